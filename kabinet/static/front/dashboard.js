// One organization's dashboard: balance and its runway, documents, products and contracts, databases
// and their update schedules (one query), the live session list and update runs (two subscriptions).
import { html, useEffect, useState } from "./vendor/preact-htm.module.js";
import { request, subscribe } from "./api.js";
import { day, days, label, moment, money, number, schedule } from "./format.js";

const RUN = `fragment FrontRun on UpdateRun {
  id status progress message targetVersion scheduledFor startedAt finishedAt database { id name }
}`;
const OPEN_RUNS = ["QUARANTINE", "SCHEDULED", "RUNNING"];
const DASHBOARD = `query FrontDashboard($id: ID!) {
  organization(id: $id) {
    id name inn code viewerRole
    dashboard { balanceRunway { days runsOutOn averageDailyCharge } }
    balance { amount currency prepaidServices { name unit total used remaining validUntil } }
    documents(first: 30) { totalCount edges { node { id kind number issuedOn period amount currency } } }
    products(first: 100) { edges { node { id name category registrationNumber workplaces updatesAvailableUntil
      contract { id number } } } }
    contracts { id kind number status startsOn endsOn }
    databases(first: 100) { edges { node { id name configuration version isTypical
      updateSchedule { mode runAt dayOfMonth timeOfDay timezone nextRunAt }
      updateRuns(first: 5) { edges { node { ...FrontRun } } } } } }
  }
}
${RUN}`;
const DOWNLOAD = `query FrontDownload($id: ID!) { node(id: $id) { ... on Document { downloadUrl } } }`;
const SESSIONS = `subscription FrontSessions($organizationId: ID!) {
  sessions(organizationId: $organizationId) {
    sessions { id userName clientKind host startedAt status database { id name } }
    event { kind session { id } }
  }
}`;
const RUNS = `subscription FrontUpdateRuns($organizationId: ID!) {
  updateRuns(organizationId: $organizationId) { ...FrontRun }
}
${RUN}`;
const TERMINATE = `mutation FrontTerminate($id: ID!) {
  terminateSession(sessionId: $id) { session { id status } userErrors { code message } }
}`;
const TERMINATE_ALL = `mutation FrontTerminateAll($organizationId: ID!) {
  terminateAllSessions(organizationId: $organizationId) { sessions { id } userErrors { code message } }
}`;
const ONE_OFF = `mutation FrontUpdateSoon($databaseId: ID!, $at: DateTime!) {
  scheduleOneOffUpdate(databaseId: $databaseId, at: $at) {
    updateRun { ...FrontRun } userErrors { code message }
  }
}
${RUN}`;

// The error the query gave a field (FORBIDDEN for a role that may not see it), as a sentence.
function fieldError(errors, field) {
  const error = (errors || []).find((e) => e.path && e.path[1] === field);
  if (!error) return null;
  return error.extensions?.code === "FORBIDDEN" ? "Недоступно для вашей роли." : error.message;
}

export function Dashboard({ organization }) {
  const [result, setResult] = useState(null);
  const [failure, setFailure] = useState(null);
  const [runs, setRuns] = useState({});

  useEffect(() => {
    request(DASHBOARD, { id: organization.id }).then((answer) => {
      setResult(answer);
      // the runs still ahead or under way, as the query found them; the subscription brings changes
      const open = (answer.data.organization?.databases?.edges || [])
        .flatMap(({ node }) => node.updateRuns.edges.map((e) => e.node))
        .filter((run) => OPEN_RUNS.includes(run.status));
      setRuns((known) => Object.fromEntries([...open.map((run) => [run.id, run]), ...Object.entries(known)]));
    }, (e) => setFailure(e.message));
  }, [organization.id]);

  const track = (run) => setRuns((known) => ({ ...known, [run.id]: run }));
  if (failure) return html`<p class="error" role="alert">${failure}</p>`;
  if (!result) return html`<p class="muted">Загрузка данных организации…</p>`;
  const { data, errors } = result;
  const org = data.organization;
  if (!org) return html`<p class="error">Организация недоступна.</p>`;
  const manages = org.viewerRole === "OWNER" || org.viewerRole === "ADMIN";
  return html`
    <h1 class="org">${org.name} <span class="muted">ИНН ${org.inn} · код ${org.code} · ${label("role", org.viewerRole)}</span></h1>
    <div class="grid">
      <${Balance} org=${org} error=${fieldError(errors, "balance")} />
      <${Documents} org=${org} error=${fieldError(errors, "documents")} />
    </div>
    <${Sessions} organizationId=${org.id} manages=${manages} />
    <${Databases} org=${org} manages=${manages} error=${fieldError(errors, "databases")} onRun=${track} />
    <${UpdateRuns} organizationId=${org.id} runs=${runs} onRun=${track} />
    <${Products} org=${org} />`;
}

function Balance({ org, error }) {
  const runway = org.dashboard?.balanceRunway;
  return html`<section class="card" id="balance">
    <h2>Баланс депозита</h2>
    ${error ? html`<p class="muted">${error}</p>` : html`
      <p class="amount">${money(org.balance.amount, org.balance.currency)}</p>
      ${runway && html`<p class="runway">Средств хватит примерно на ${days(runway.days)} — до ${day(runway.runsOutOn)}.${" "}
        <span class="muted">В среднем ${money(runway.averageDailyCharge)} в день за последние 30 дней.</span></p>`}
      ${org.balance.prepaidServices.length > 0 && html`<h3>Остатки предоплаченных услуг</h3>
        <ul>${org.balance.prepaidServices.map((s) => html`<li>${s.name}: ${number(s.remaining)} из ${number(s.total)} ${s.unit}
          ${s.validUntil && html`<span class="muted"> (до ${day(s.validUntil)})</span>`}</li>`)}</ul>`}`}
  </section>`;
}

function Documents({ org, error }) {
  const [problem, setProblem] = useState(null);
  async function download(document_) {
    setProblem(null);
    try {
      // a download link is signed for a few minutes: asked for at the moment of the click
      const { data } = await request(DOWNLOAD, { id: document_.id });
      const link = Object.assign(document.createElement("a"), { href: data.node.downloadUrl, download: "" });
      document.body.append(link);
      link.click();
      link.remove();
    } catch (e) {
      setProblem(e.message);
    }
  }
  return html`<section class="card" id="documents">
    <h2>Документы</h2>
    ${error ? html`<p class="muted">${error}</p>` : html`
      ${problem && html`<p class="error">${problem}</p>`}
      <table><thead><tr><th>Документ</th><th>Период</th><th>Сумма</th><th></th></tr></thead><tbody>
        ${org.documents.edges.map(({ node: d }) => html`<tr>
          <td>${label("document", d.kind)} № ${d.number} от ${day(d.issuedOn)}</td>
          <td class="nowrap">${d.period || "—"}</td><td class="num">${money(d.amount, d.currency)}</td>
          <td><button type="button" class="link" data-document=${d.number} onClick=${() => download(d)}>Скачать</button></td>
        </tr>`)}
      </tbody></table>`}
  </section>`;
}

function Sessions({ organizationId, manages }) {
  const [sessions, setSessions] = useState(null);
  const [error, setError] = useState(null);
  const [refused, setRefused] = useState(null);
  const [asked, setAsked] = useState(() => new Set());  // terminations sent, not yet seen in the list

  useEffect(() => subscribe(SESSIONS, { organizationId }, (data) => {
    setError(null);
    setSessions(data.sessions.sessions);
  }, (e) => setError(e.code === "FORBIDDEN" ? "Сеансы недоступны для вашей роли." : e.message)), [organizationId]);

  async function terminate(session) {
    setRefused(null);
    setAsked((ids) => new Set(ids).add(session.id));
    let refusal = null;
    try {
      const { data } = await request(TERMINATE, { id: session.id });
      refusal = data.terminateSession.userErrors.map((e) => e.message).join("; ") || null;
    } catch (e) {
      refusal = e.message;
    }
    if (refusal) {
      setRefused(refusal);
      setAsked((ids) => new Set([...ids].filter((id) => id !== session.id)));
    }
  }

  async function terminateAll() {
    if (!window.confirm("Завершить все активные сеансы организации?")) return;
    setRefused(null);
    try {
      const { data } = await request(TERMINATE_ALL, { organizationId });
      const userErrors = data.terminateAllSessions.userErrors;
      if (userErrors.length) setRefused(userErrors.map((e) => e.message).join("; "));
    } catch (e) {
      setRefused(e.message);
    }
  }

  return html`<section class="card" id="sessions">
    <h2>Сеансы <span class="live" title="обновляется сам">● в реальном времени</span></h2>
    ${error && html`<p class="muted">${error}</p>`}
    ${refused && html`<p class="error" role="alert">${refused}</p>`}
    ${sessions === null && !error && html`<p class="muted">Подключение…</p>`}
    ${sessions && html`<table><thead><tr><th>Пользователь</th><th>База</th><th>Клиент</th><th>Начало</th><th>Статус</th><th></th></tr></thead>
      <tbody>${sessions.map((s) => html`<tr data-session=${s.id}>
        <td>${s.userName}</td><td>${s.database?.name || "—"}</td>
        <td>${label("client", s.clientKind)}${s.host ? ` (${s.host})` : ""}</td><td>${moment(s.startedAt)}</td>
        <td>${label("session", s.status)}</td>
        <td>${s.status === "ACTIVE" && html`<button type="button" class="danger" disabled=${asked.has(s.id)} onClick=${() => terminate(s)}>Завершить сеанс</button>`}</td>
      </tr>`)}</tbody></table>
      <p class="muted">Активных сеансов: ${sessions.filter((s) => s.status === "ACTIVE").length}
        ${manages && sessions.length > 0 && html`${" "}<button type="button" class="danger" onClick=${terminateAll}>Завершить все сеансы</button>`}</p>`}
  </section>`;
}

function Databases({ org, manages, error, onRun }) {
  const [problem, setProblem] = useState(null);
  async function updateSoon(database) {
    setProblem(null);
    const at = new Date(Date.now() + 60_000).toISOString();
    try {
      const { data } = await request(ONE_OFF, { databaseId: database.id, at });
      const payload = data.scheduleOneOffUpdate;
      if (payload.userErrors.length) setProblem(payload.userErrors.map((e) => e.message).join("; "));
      else onRun(payload.updateRun);
    } catch (e) {
      setProblem(e.message);
    }
  }
  return html`<section class="card" id="databases">
    <h2>Облачные базы и расписание обновлений</h2>
    ${error ? html`<p class="muted">${error}</p>` : html`
      ${problem && html`<p class="error" role="alert">${problem}</p>`}
      <table><thead><tr><th>База</th><th>Конфигурация</th><th>Версия</th><th>Обновление</th><th>Следующее</th><th></th></tr></thead><tbody>
        ${org.databases.edges.map(({ node: d }) => html`<tr>
          <td>${d.name}</td><td>${d.configuration}${d.isTypical ? "" : html` <span class="muted">(нетиповая)</span>`}</td>
          <td>${d.version}</td><td>${schedule(d.updateSchedule)}</td><td>${moment(d.updateSchedule.nextRunAt)}</td>
          <td>${manages && d.isTypical && html`<button type="button" onClick=${() => updateSoon(d)}>Обновить через минуту</button>`}</td>
        </tr>`)}
      </tbody></table>`}
  </section>`;
}

function UpdateRuns({ organizationId, runs, onRun }) {
  const [error, setError] = useState(null);
  useEffect(() => subscribe(RUNS, { organizationId }, (data) => onRun(data.updateRuns),
    (e) => setError(e.code === "FORBIDDEN" ? "Обновления недоступны для вашей роли." : e.message)), [organizationId]);
  // what runs now first, then by the time each is (or was) planned for
  const order = (run) => `${run.status === "RUNNING" ? 0 : 1}${run.scheduledFor}`;
  const list = Object.values(runs).sort((a, b) => (order(a) < order(b) ? -1 : 1));
  return html`<section class="card" id="updates">
    <h2>Ход обновлений</h2>
    ${error && html`<p class="muted">${error}</p>`}
    ${list.length === 0 && !error && html`<p class="muted">Сейчас ничего не обновляется; запущенное обновление появится здесь.</p>`}
    <ul class="runs">${list.map((r) => html`<li>
      <strong>${r.database?.name}</strong> → ${r.targetVersion || "новейший релиз"}: ${label("run", r.status)}
      ${r.startedAt ? html` <progress max="100" value=${r.progress}>${r.progress}%</progress> ${r.progress}% ` : " "}
      <span class="muted">${r.message || `на ${moment(r.scheduledFor)}`}</span></li>`)}</ul>
  </section>`;
}

function Products({ org }) {
  return html`<section class="card" id="products">
    <h2>Продукты и договоры</h2>
    <table><thead><tr><th>Продукт</th><th>Категория</th><th>Рег. номер</th><th>Рабочих мест</th><th>Обновления доступны до</th><th>Договор</th></tr></thead><tbody>
      ${org.products.edges.map(({ node: p }) => html`<tr>
        <td>${p.name}</td><td>${label("category", p.category)}</td><td>${p.registrationNumber || "—"}</td>
        <td>${p.workplaces ?? "—"}</td><td>${day(p.updatesAvailableUntil)}</td><td>${p.contract?.number || "—"}</td>
      </tr>`)}
    </tbody></table>
    <h3>Договоры</h3>
    <ul>${org.contracts.map((c) => html`<li>${label("contract", c.kind)} № ${c.number}: ${label("contractStatus", c.status)},
      с ${day(c.startsOn)}${c.endsOn ? ` по ${day(c.endsOn)}` : ""}</li>`)}</ul>
  </section>`;
}
