from tests.helpers import Listener


async def test_click_then_paid_deposit_fires_both_postbacks(pw: Listener) -> None:
    clickid = await pw.click(ref_id="ext-1")
    status, body = await pw.postback(clickid=clickid, type="Deposit", status="1", sum="50")
    assert status == 200
    assert [d["verdict"] for d in body["decisions"]] == ["fired", "fired"]
    await pw.delivered(clickid)
    assert await pw.outcomes(clickid) == [["delivered"], ["delivered"]]
