// The front page's shell: sign in, pick an organization, then its dashboard (dashboard.js).
import { html, render, useEffect, useState } from "./vendor/preact-htm.module.js";
import { onSignedOut, refresh, request, signIn, signOut } from "./api.js";
import { Dashboard } from "./dashboard.js";
import { label } from "./format.js";

const ORG_KEY = "kabinet.front.organization";

// The demo logins, when the server wrote them into the page (only with the demo data set on).
function demoLogins() {
  const aside = document.getElementById("demo-logins");
  if (!aside) return null;
  const logins = [...aside.querySelectorAll("[data-login]")].map((button) => ({
    login: button.dataset.login,
    password: button.dataset.password,
    who: button.parentElement.textContent.replace(button.textContent, "").replace(/^\s*—\s*/, ""),
  }));
  aside.remove();
  return logins;
}
const DEMO = demoLogins();

function SignIn({ onDone, notice }) {
  const [login, setLogin] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState(notice || null);
  const [busy, setBusy] = useState(false);

  async function submit(event, asLogin = login, asPassword = password) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const result = await signIn(asLogin.trim(), asPassword);
      if (result.userErrors) setError(result.userErrors.map((e) => e.message).join("; ") || "Вход не выполнен");
      else onDone(result.user);
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  }

  return html`
    <section class="card signin">
      <h1>Вход в личный кабинет</h1>
      <form onSubmit=${submit}>
        <label>Логин (e-mail или телефон)
          <input name="login" autocomplete="username" required value=${login} onInput=${(e) => setLogin(e.target.value)} />
        </label>
        <label>Пароль
          <input name="password" type="password" autocomplete="current-password" required value=${password}
            onInput=${(e) => setPassword(e.target.value)} />
        </label>
        ${error && html`<p class="error" role="alert">${error}</p>`}
        <button type="submit" disabled=${busy}>Войти</button>
      </form>
      <p class="muted">API для программ: <a href="/graphql">GraphiQL</a>.</p>
    </section>
    ${DEMO && html`
      <section class="card demo">
        <h2>Демо-доступ</h2>
        <p>Демонстрационные данные включены; пароль у всех — <code>${DEMO[0]?.password}</code>.</p>
        <ul>
          ${DEMO.map((d) => html`<li>
            <button type="button" class="link" data-demo-login=${d.login}
              onClick=${(e) => { setLogin(d.login); setPassword(d.password); submit(e, d.login, d.password); }}>${d.login}</button>
            <span class="muted"> — ${d.who}</span></li>`)}
        </ul>
      </section>`}`;
}

function OrganizationPicker({ organizations, onPick }) {
  return html`<section class="card">
    <h1>Выберите организацию</h1>
    <ul class="orgs">
      ${organizations.map((o) => html`<li><button type="button" onClick=${() => onPick(o)}>
        ${o.name}</button> <span class="muted">ИНН ${o.inn}, код ${o.code}, роль: ${label("role", o.viewerRole)}</span></li>`)}
    </ul>
  </section>`;
}

const ORGANIZATIONS = `query FrontOrganizations {
  me { id fullName email }
  organizations(first: 100) { edges { node { id name inn code viewerRole moderationStatus } } }
}`;

function App() {
  const [state, setState] = useState({ phase: "loading" });

  async function load() {
    try {
      const { data } = await request(ORGANIZATIONS);
      const organizations = data.organizations.edges.map((e) => e.node);
      const kept = organizations.find((o) => o.id === sessionStorage.getItem(ORG_KEY));
      const only = organizations.length === 1 ? organizations[0] : null;
      setState({ phase: "signed-in", me: data.me, organizations, organization: kept || only });
    } catch (e) {
      setState({ phase: "signin", error: e.message });
    }
  }

  useEffect(() => {
    onSignedOut(() => setState({ phase: "signin" }));
    refresh().then((ok) => (ok ? load() : setState({ phase: "signin" })), () => setState({ phase: "signin" }));
  }, []);

  function pick(organization) {
    if (organization) sessionStorage.setItem(ORG_KEY, organization.id);
    else sessionStorage.removeItem(ORG_KEY);
    setState({ ...state, organization });
  }

  if (state.phase === "loading") return html`<p class="muted">Загрузка…</p>`;
  if (state.phase === "signin") return html`<${SignIn} onDone=${load} notice=${state.error} />`;
  const { me, organizations, organization } = state;
  return html`
    <div class="who">
      <span>${me.fullName}</span>
      ${organization && organizations.length > 1 && html`<button type="button" class="link" onClick=${() => pick(null)}>Сменить организацию</button>`}
      <button type="button" class="link" onClick=${() => signOut()}>Выйти</button>
    </div>
    ${organizations.length === 0 && html`<section class="card"><p>Вы пока не состоите ни в одной организации.</p></section>`}
    ${!organization && organizations.length > 0 && html`<${OrganizationPicker} organizations=${organizations} onPick=${pick} />`}
    ${organization && html`<${Dashboard} key=${organization.id} organization=${organization} />`}`;
}

render(html`<${App} />`, document.getElementById("app"));
