"""The operations of each workload: kabinet's, and PostGraphile's equivalent over the same tables.

The two APIs have different schemas, so the texts differ; they ask for the same rows and about
the same columns, and the bench prints both responses' sizes. PostGraphile reads the tables with
no authorization (it has no idea of memberships): W1 goes through the user's memberships to stay
"what this user sees", W2 reads the organization by its key.
"""

LOGIN = """mutation($login: String!, $password: String!) {
  login(input: {login: $login, password: $password}) { accessToken userErrors { code message } }
}"""

# W1: a user who sees 50 organizations: each one's 20 products with their contract, and 10 documents.
W1_KABINET = """query W1 {
  organizations(first: 50) { totalCount edges { node {
    id name inn code viewerRole
    products(first: 20) { totalCount edges { node {
      id name category workplaces updatesAvailableUntil
      contract { id number kind status startsOn endsOn }
    } } }
    documents(first: 10) { totalCount edges { node { id kind number issuedOn amount } } }
  } } }
}"""

W1_POSTGRAPHILE = """query W1($user: UUID!) {
  userByRowId(rowId: $user) { membershipsByUserId(first: 50, orderBy: CREATED_AT_ASC) { totalCount nodes {
    role
    organizationByOrganizationId {
      rowId name inn code
      productsByOrganizationId(first: 20, orderBy: [NAME_ASC, ROW_ID_ASC]) { totalCount nodes {
        rowId name category workplaces updatesAvailableUntil
        contractByContractId { rowId number kind startsOn endsOn }
      } }
      documentsByOrganizationId(first: 10, orderBy: [ISSUED_ON_DESC, NUMBER_ASC]) { totalCount nodes {
        rowId kind number issuedOn amount
      } }
    }
  } } }
}"""

# W2: the owner's dashboard of one organization, the everyday request.
W2_KABINET = """query W2($org: ID!) {
  organization(id: $org) {
    id name viewerRole
    products(first: 20) { totalCount edges { node { id name category contract { number status endsOn } } } }
    balance { amount currency prepaidServices { name unit total used remaining validUntil } }
    documents(first: 10) { totalCount edges { node { id kind number issuedOn amount } } }
    databases(first: 20) { edges { node {
      id name configuration version
      updateSchedule { mode dayOfMonth timeOfDay timezone nextRunAt }
    } } }
    sessions(status: ACTIVE, first: 50) { totalCount edges { node {
      id userName clientKind startedAt status database { name }
    } } }
  }
}"""

W2_POSTGRAPHILE = """query W2($org: UUID!) {
  organizationByRowId(rowId: $org) {
    rowId name
    productsByOrganizationId(first: 20, orderBy: [NAME_ASC, ROW_ID_ASC]) { totalCount nodes {
      rowId name category contractByContractId { number endsOn }
    } }
    balanceTransactionsByOrganizationId(first: 1, orderBy: SEQ_DESC) { nodes { balanceAfter } }
    prepaidServicesByOrganizationId(orderBy: [NAME_ASC, ROW_ID_ASC]) { nodes { name unit total used validUntil } }
    documentsByOrganizationId(first: 10, orderBy: [ISSUED_ON_DESC, NUMBER_ASC]) { totalCount nodes {
      rowId kind number issuedOn amount
    } }
    databasesByOrganizationId(first: 20, orderBy: [NAME_ASC, ROW_ID_ASC]) { nodes {
      rowId name configuration version
      updateScheduleByDatabaseId { mode dayOfMonth timeOfDay timezone }
    } }
    sessionsByOrganizationId(first: 50, condition: {status: "ACTIVE"}, orderBy: [STARTED_AT_DESC, ROW_ID_DESC]) {
      totalCount nodes { rowId userName clientKind startedAt status databaseByDatabaseId { name } }
    }
  }
}"""

# W3: the ledger, page after page (keyset cursors).
W3_KABINET = """query W3($org: ID!, $after: String) {
  organization(id: $org) {
    balanceTransactions(first: 100, after: $after) {
      edges { node { id kind amount balanceAfter description occurredAt } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""

# W4: the live session list of one organization.
W4_SUBSCRIPTION = """subscription W4($org: ID!) {
  sessions(organizationId: $org) {
    sessions { id userName clientKind host startedAt status database { name } }
    event { kind session { id } }
  }
}"""

# W4 spread: what an ACCOUNTANT (who may not see sessions) follows: the organization's data changes.
# A session change must never reach it.
W4_ACCOUNTANT_SUBSCRIPTION = """subscription W4Data($org: ID!) {
  organizationData(organizationId: $org) { areas at organization { id name } }
}"""

# W5: writes, with subscribers of every session event attached.
W5_SUBSCRIPTION = """subscription W5($org: ID!) {
  sessionEvents(organizationId: $org) { kind at session { id status userName } }
}"""

W5_TERMINATE = """mutation W5t($id: ID!) {
  terminateSession(sessionId: $id) { session { id status } userErrors { code field message } }
}"""

W5_SCHEDULE = """mutation W5s($db: ID!, $day: Int!) {
  scheduleUpdate(input: {databaseId: $db, mode: MONTHLY, dayOfMonth: $day, timeOfDay: "03:00"}) {
    database { id updateSchedule { mode dayOfMonth timeOfDay nextRunAt } } userErrors { code field message }
  }
}"""
