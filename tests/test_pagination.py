"""Relay cursor pagination: stable order, cursors that continue, totals, and the page size limit."""

from __future__ import annotations

LEDGER_PAGE = """query($first: Int, $after: String) { organizations { edges { node {
  balanceTransactions(first: $first, after: $after) { totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { id balanceAfter } } } } } } }"""


def ledger(body: dict) -> dict:
    return body["data"]["organizations"]["edges"][0]["node"]["balanceTransactions"]


async def test_paging_a_ledger_to_the_end_visits_every_entry_once_in_order(gql):
    everything = ledger(await gql.execute(LEDGER_PAGE, {"first": 100}, as_user="owner@romashka.example"))
    seen, after, pages = [], None, 0
    while True:
        page = ledger(await gql.execute(LEDGER_PAGE, {"first": 3, "after": after}, as_user="owner@romashka.example"))
        pages += 1
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        assert page["totalCount"] == everything["totalCount"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        after = page["pageInfo"]["endCursor"]
    assert seen == [e["node"]["id"] for e in everything["edges"]]
    assert pages == -(-everything["totalCount"] // 3)


async def test_first_zero_gives_only_the_total(gql):
    page = ledger(await gql.execute(LEDGER_PAGE, {"first": 0}, as_user="owner@romashka.example"))
    assert page["edges"] == [] and page["totalCount"] >= 10 and page["pageInfo"]["hasNextPage"] is False


async def test_more_than_a_hundred_per_page_is_refused_before_anything_runs(gql):
    body = await gql.execute(LEDGER_PAGE, {"first": 101}, as_user="owner@romashka.example")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "100" in body["errors"][0]["message"]


async def test_a_cursor_that_is_not_ours_is_bad_user_input(gql):
    body = await gql.execute(LEDGER_PAGE, {"first": 2, "after": "bm90IGEgY3Vyc29y"}, as_user="owner@romashka.example")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_products_filter_by_category(gql):
    body = await gql.execute(
        "{ organizations { edges { node { all: products { totalCount } local: products(category: LOCAL_1C) "
        "{ totalCount edges { node { category } } } } } } }",
        as_user="owner@romashka.example",
    )
    org = body["data"]["organizations"]["edges"][0]["node"]
    assert 0 < org["local"]["totalCount"] < org["all"]["totalCount"]
    assert {e["node"]["category"] for e in org["local"]["edges"]} == {"LOCAL_1C"}
