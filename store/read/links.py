"""How the inbound requests of a click or of a conversion are found.

A request that made a click is the click's ``inbound_id``; one that made or changed a
conversion is its event's ``inbound_id``. Only the others, the requests stored with a reason
(refused ones and ignored duplicates), are found by the click id they name, through the
partial index ``inbound_unlinked`` (schema step 13): an index of every request's click id
took a random key on each postback, a page of one more large index dirtied on every write.

Each function gives a SELECT of inbound ids, to use inside ``IN (...)``, for the clicks or
conversions whose ids a table or common table expression named ``ids`` holds.
"""

from __future__ import annotations

from store.schema import STORED, attached_click, by_click_id, own_click

EVENTS, INBOUND = STORED["conversion_events"], STORED["inbound"]


def of_clicks(ids: str) -> str:
    """SQL: the ids of every inbound request of the clicks in ``ids``."""
    return (
        f"SELECT k.inbound_id FROM clicks k WHERE {own_click('k', f'IN {ids}')}"
        f" UNION SELECT e.inbound_id FROM clicks k JOIN conversions n ON n.click_seq = k.seq"
        f" JOIN {EVENTS} e ON e.conversion_id = n.id WHERE {by_click_id('k', f'IN {ids}')}"
        f" UNION SELECT i.id FROM {INBOUND} i WHERE i.click_id IN {ids} AND i.reason != ''"
    )


def of_conversions(ids: str) -> str:
    """SQL: the ids of every inbound request of the conversions in ``ids``."""
    return (
        f"SELECT e.inbound_id FROM {EVENTS} e WHERE e.conversion_id IN {ids}"
        f" UNION SELECT i.id FROM conversions n JOIN {INBOUND} i ON i.click_id = n.click_id"
        f" AND i.conversion_id = n.id AND i.reason != '' WHERE n.id IN {ids}"
    )


def click_of(request: str, click: str = "k") -> str:
    """SQL: ``click`` (an alias of ``clicks``) is the click that the inbound request
    ``request`` (an alias of ``inbound`` or of its stored table) names: by its own id (a
    click's request), through its conversion (a postback's), or, for a request stored with a
    reason, among the attached clicks (the blocks are read for those few only)."""
    named = f"= {request}.click_id"
    return (
        f"({own_click(click, named)}"
        f" OR {click}.seq = (SELECT click_seq FROM conversions WHERE id = {request}.conversion_id)"
        f" OR {request}.reason != '' AND {attached_click(click, named)})"
    )
