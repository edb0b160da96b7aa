// The console's one island on every page: live refresh of the page's
// [data-live] parts over the change feed (server-sent events), relative
// times, forms posted with the session's CSRF token, confirmations, copy
// buttons. The pages work as plain HTML; this makes them live.

const $ = <T extends Element>(sel: string, root: ParentNode = document) => root.querySelector<T>(sel);
const $$ = <T extends Element>(sel: string, root: ParentNode = document) =>
  Array.from(root.querySelectorAll<T>(sel));

// ---- relative times -------------------------------------------------------

function ago(t: Date, now: Date): string {
  let d = (now.getTime() - t.getTime()) / 1000;
  const future = d < 0;
  if (future) d = -d;
  let s: string;
  if (d < 10) return "just now";
  else if (d < 60) s = `${Math.floor(d)} s`;
  else if (d < 3600) s = `${Math.floor(d / 60)} min`;
  else if (d < 48 * 3600) s = `${Math.floor(d / 3600)} h`;
  else s = `${Math.floor(d / 86400)} days`;
  return future ? `in ${s}` : `${s} ago`;
}

function refreshTimes(root: ParentNode = document) {
  const now = new Date();
  for (const el of $$<HTMLTimeElement>("time[data-rel]", root)) {
    const t = new Date(el.dateTime);
    if (!isNaN(t.getTime())) el.textContent = ago(t, now);
  }
}

// ---- CSRF -----------------------------------------------------------------

let csrf: Promise<string> | null = null;

// csrfToken is the session's token (GET /auth/session), "" when the caller
// is not on a cookie session (a bearer key needs none).
function csrfToken(): Promise<string> {
  if (!csrf) {
    csrf = fetch("/auth/session", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(async (r) => (r.ok ? String((await r.json()).csrfToken ?? "") : ""))
      .catch(() => "");
  }
  return csrf;
}

// ---- swapping page parts ---------------------------------------------------

function swapLive(doc: Document) {
  for (const fresh of $$<HTMLElement>("[data-live][id]", doc)) {
    const cur = document.getElementById(fresh.id);
    if (!cur || cur.innerHTML === fresh.innerHTML) continue;
    // A part the user is typing in stays as it is, and so does one whose
    // form is being posted: its answer (an error) is shown on that form.
    if (cur.contains(document.activeElement) && document.activeElement?.matches("input,select,textarea")) continue;
    if (cur.querySelector("form[data-busy]")) continue;
    const next = document.importNode(fresh, true) as HTMLElement;
    // What the user opened (an entry's details, an edit form) stays open.
    const open = new Set($$<HTMLDetailsElement>("details[open] > summary", cur).map((s) => s.textContent));
    for (const s of $$<HTMLElement>("details > summary", next)) {
      if (open.has(s.textContent)) (s.parentElement as HTMLDetailsElement).open = true;
    }
    cur.replaceWith(next);
  }
  refreshTimes();
}

function swapMain(doc: Document) {
  const fresh = $("main", doc);
  const cur = $("main");
  if (fresh && cur) cur.replaceWith(document.importNode(fresh, true));
  document.title = doc.title;
  refreshTimes();
  const focus = $<HTMLElement>("[data-autofocus]") ?? $<HTMLElement>("main h1");
  focus?.focus();
}

const parse = (html: string) => new DOMParser().parseFromString(html, "text/html");

// ---- live updates -----------------------------------------------------------

let refreshing = false;
let again = false;

async function refresh() {
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  try {
    const r = await fetch(location.href, { credentials: "same-origin", headers: { "X-Runyard-Refresh": "1" } });
    if (r.redirected && new URL(r.url).pathname === "/signin") {
      location.assign(r.url);
      return;
    }
    if (r.ok) swapLive(parse(await r.text()));
  } catch {
    // The control plane is away: the event stream says so and retries.
  } finally {
    refreshing = false;
    if (again) {
      again = false;
      setTimeout(refresh, 100);
    }
  }
}

let timer: number | undefined;
function soon() {
  clearTimeout(timer);
  timer = window.setTimeout(refresh, 150);
}

function setLive(state: "live" | "reconnecting") {
  const el = $("#live-status");
  if (!el) return;
  el.textContent = state === "live" ? "Live" : "Reconnecting…";
  el.setAttribute("data-state", state);
}

function startLive() {
  const body = document.body;
  if (!body.hasAttribute("data-live-page")) return;
  let lost = false;
  const connect = () => {
    // From the position the page was read at; after a reconnect the
    // browser sends the last event's id (Last-Event-ID) instead.
    const u = new URL(body.dataset.events ?? "/console/events", location.href);
    if (body.dataset.cursor) u.searchParams.set("cursor", body.dataset.cursor);
    const es = new EventSource(u);
    es.onopen = () => {
      setLive("live");
      if (lost) soon(); // changes made meanwhile
      lost = false;
    };
    es.onmessage = soon;
    es.onerror = () => {
      lost = true;
      setLive("reconnecting");
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (an error status): retry ourselves.
        setTimeout(connect, 2000);
      }
    };
  };
  connect();
  const poll = Number(body.dataset.poll ?? "0");
  if (poll > 0) setInterval(() => document.visibilityState === "visible" && refresh(), poll * 1000);
}

// ---- logs -------------------------------------------------------------------

// The log page streams GET /logs/{runner}/{log}?follow=1 as it is written.
// The text is kept as it arrives, in chunks (the last maxChars of it), and
// split into lines only when drawn; a draw happens at most once a frame and
// no more often than the last draw's cost allows (a draw of a long text is
// a layout of all of it), so a fast log never freezes the tab. While
// following, only the newest followLines are drawn. Search filters what is
// drawn.
const maxChars = 4 << 20;
const followLines = 2000;

function startLog() {
  const pre = $<HTMLPreElement>("#log");
  if (!pre) return;
  const search = $<HTMLInputElement>("#log-search");
  const follow = $<HTMLInputElement>("#log-follow");
  const status = $<HTMLElement>("#log-status");
  const say = (s: string) => status && (status.textContent = s);
  let chunks: string[] = [];
  let chars = 0;
  let dropped = false;
  let drawn = false;
  let cost = 0;
  // tail returns the kept text's last n lines (all of it for n = 0),
  // without the first, partial, line once text was dropped.
  const tail = (n: number): string[] => {
    let text = "";
    if (n > 0) {
      let found = 0;
      let i = chunks.length;
      while (i > 0 && found <= n) {
        i--;
        for (let at = chunks[i].indexOf("\n"); at >= 0; at = chunks[i].indexOf("\n", at + 1)) found++;
      }
      text = chunks.slice(i).join("");
    } else {
      text = chunks.join("");
    }
    const out = text.split("\n");
    if (dropped || (n > 0 && out.length > n + 1)) out.splice(0, Math.max(1, out.length - (n > 0 ? n + 1 : out.length)));
    return out;
  };
  const draw = () => {
    drawn = false;
    const t0 = performance.now();
    const q = search?.value ?? "";
    let shown = q ? tail(0).filter((l) => l.includes(q)) : tail(follow?.checked ? followLines : 0);
    if (q && follow?.checked && shown.length > followLines) shown = shown.slice(shown.length - followLines);
    pre.textContent = shown.join("\n");
    if (follow?.checked) pre.scrollTop = pre.scrollHeight;
    // The layout comes after this function: the next frame's start says
    // what the draw cost in all.
    requestAnimationFrame(() => (cost = performance.now() - t0));
  };
  const redraw = () => {
    if (!drawn) {
      drawn = true;
      // A busy main thread: leave it four times the last draw's cost first.
      setTimeout(() => requestAnimationFrame(draw), Math.min(1000, cost * 4));
    }
  };
  search?.addEventListener("input", redraw);
  follow?.addEventListener("change", redraw);
  const stream = async (attempt: number): Promise<void> => {
    chunks = [];
    chars = 0;
    dropped = false;
    try {
      const r = await fetch(pre.dataset.logUrl + "?follow=1", { credentials: "same-origin" });
      if (!r.ok || !r.body) {
        let msg = `The log could not be read (${r.status}).`;
        try {
          msg = String((await r.json()).error ?? msg);
        } catch {
          // not JSON
        }
        say(`${msg} Reload the page to try again.`);
        return;
      }
      say("Following the log as it is written…");
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const text = dec.decode(value, { stream: true });
        chunks.push(text);
        chars += text.length;
        while (chars - chunks[0].length > maxChars) {
          chars -= chunks.shift()!.length;
          dropped = true;
        }
        redraw();
      }
      say(
        dropped
          ? `The run ended. Showing its last ${maxChars >> 20} MB; download the log for all of it.`
          : "The run ended: this is the whole log.",
      );
      redraw();
    } catch {
      if (attempt < 30) {
        say("The connection dropped: reconnecting…");
        setTimeout(() => void stream(attempt + 1), 2000);
      } else {
        say("The control plane does not answer: reload the page once it is back.");
      }
    }
  };
  void stream(0);
}

// ---- the automations file editor --------------------------------------------

// The editor is a textarea with a gutter of line numbers beside it, which
// follows its scrolling and its lines; the server marks the line of an
// error, and the editor puts the cursor there.
function startEditor() {
  const ta = $<HTMLTextAreaElement>("#automations-file");
  const gutter = $<HTMLElement>("#file-gutter");
  if (!ta || !gutter) return;
  const errLine = Number(ta.dataset.errorLine ?? "0");
  let shown = -1;
  const number = () => {
    const n = Math.max(1, ta.value.split("\n").length - (ta.value.endsWith("\n") ? 1 : 0));
    if (n === shown) return;
    shown = n;
    const frag = document.createDocumentFragment();
    for (let i = 1; i <= n; i++) {
      const span = document.createElement("span");
      span.textContent = String(i);
      if (i === errLine) {
        span.className = "err";
        span.dataset.errorLine = "";
      }
      frag.append(span, "\n");
    }
    gutter.replaceChildren(frag);
  };
  const follow = () => (gutter.scrollTop = ta.scrollTop);
  ta.addEventListener("input", () => {
    number();
    follow();
  });
  ta.addEventListener("scroll", follow);
  const gotoLine = (line: number) => {
    const lines = ta.value.split("\n");
    let start = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
    const end = start + (lines[line - 1]?.length ?? 0);
    ta.focus();
    ta.setSelectionRange(start, end);
    // The line, a few lines from the top: its height is the gutter's.
    const lh = parseFloat(getComputedStyle(ta).lineHeight) || 20;
    ta.scrollTop = Math.max(0, (line - 4) * lh);
    follow();
  };
  for (const a of $$<HTMLAnchorElement>("a[data-goto-line]")) {
    a.addEventListener("click", (ev) => {
      ev.preventDefault();
      gotoLine(Number(a.dataset.gotoLine));
    });
  }
  number();
  if (errLine > 0) gotoLine(errLine);
}

// ---- forms ------------------------------------------------------------------

// answer settles the confirmation on screen. The dialog's close event is
// fired from a task queued when it closes, so it can arrive after the next
// confirmation opened (a second click right after Cancel): a close that
// finds the dialog open again belongs to the earlier showing, which was
// settled when the next one opened, and is ignored.
let answer: ((ok: boolean) => void) | null = null;

function settle(ok: boolean) {
  const a = answer;
  answer = null;
  a?.(ok);
}

async function confirmed(form: HTMLFormElement): Promise<boolean> {
  const text = form.dataset.confirm;
  if (!text) return true;
  const dlg = $<HTMLDialogElement>("#confirm");
  if (!dlg) return false;
  if (!dlg.dataset.bound) {
    dlg.dataset.bound = "true";
    dlg.addEventListener("close", () => {
      if (!dlg.open) settle(dlg.returnValue === "ok");
    });
  }
  // An earlier showing whose close event has not fired yet: the choice
  // made in it is still the dialog's return value.
  if (answer && !dlg.open) settle(dlg.returnValue === "ok");
  $("#confirm-text", dlg)!.textContent = text;
  const ok = $<HTMLButtonElement>("#confirm-ok", dlg)!;
  ok.textContent = form.dataset.confirmAction ?? "Confirm";
  dlg.returnValue = "";
  const p = new Promise<boolean>((resolve) => (answer = resolve));
  dlg.showModal();
  $<HTMLButtonElement>("#confirm-cancel", dlg)?.focus();
  return p;
}

// sentence makes an API message ("wrong email or password") read as one.
function sentence(s: string): string {
  s = s.trim();
  if (!s) return s;
  s = s[0].toUpperCase() + s.slice(1);
  return /[.!?]$/.test(s) ? s : s + ".";
}

function showFormError(form: HTMLFormElement, msg: string) {
  let el = $<HTMLElement>("[data-form-error]", form);
  if (!el) {
    el = document.createElement("p");
    el.setAttribute("role", "alert");
    el.className = "form-error";
    el.dataset.formError = "";
    form.prepend(el);
  }
  el.textContent = msg;
}

async function post(form: HTMLFormElement, submitter: HTMLElement | null) {
  if (!(await confirmed(form))) return;
  // A button may post the form elsewhere (formaction), as Validate does.
  const action =
    submitter instanceof HTMLButtonElement && submitter.hasAttribute("formaction") ? submitter.formAction : form.action;
  const buttons = $$<HTMLButtonElement>("button", form);
  buttons.forEach((b) => (b.disabled = true));
  form.dataset.busy = "true";
  try {
    const token = await csrfToken();
    const headers: Record<string, string> = { "Content-Type": "application/x-www-form-urlencoded" };
    if (token) headers["X-CSRF-Token"] = token;
    const body = new URLSearchParams(new FormData(form) as unknown as Record<string, string>);
    const r = await fetch(action, { method: "POST", body, headers, credentials: "same-origin" });
    const html = await r.text();
    const doc = parse(html);
    if (!$("main", doc)) {
      // Refused before the console saw it (the guard answers in JSON).
      let msg = html.slice(0, 200) || r.statusText;
      try {
        const e = JSON.parse(html);
        msg = String(e.error ?? e.message ?? msg);
      } catch {
        // not JSON: the text as it is
      }
      const what =
        r.status === 401
          ? " Sign in again."
          : r.status === 403
            ? " Reload the page and try again; if it persists, your role lacks the permission."
            : " Try again in a moment.";
      showFormError(form, sentence(msg) + what);
      return;
    }
    if (r.redirected) {
      // Done: go to the page the server sent us to, whole, with its own
      // islands and live updates.
      location.assign(r.url);
      return;
    }
    // An error, or a page shown once (a new token): in place, so a reload
    // never posts again.
    swapMain(doc);
    startEditor();
  } catch {
    showFormError(form, "The control plane did not answer: check that it is running, then send the form again.");
  } finally {
    buttons.forEach((b) => (b.disabled = false));
    delete form.dataset.busy;
  }
}

async function signin(form: HTMLFormElement) {
  const data = Object.fromEntries(new FormData(form) as unknown as Iterable<[string, string]>);
  const status = $<HTMLElement>("[data-form-error]", form);
  try {
    const r = await fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(data),
    });
    if (r.ok) {
      const next = new URLSearchParams(location.search).get("next") ?? "/";
      location.assign(next.startsWith("/") && !next.startsWith("//") ? next : "/");
      return;
    }
    let msg = `Sign-in failed (${r.status}).`;
    try {
      const e = await r.json();
      msg = String(e.message ?? e.error ?? msg);
    } catch {
      if (r.status === 404) msg = "This control plane does not offer browser sign-in: update runyard.";
    }
    msg = sentence(msg);
    if (r.status === 401) msg += " Check what you typed and try again.";
    if (r.status === 429) msg += " Wait a minute before trying again.";
    showFormError(form, msg);
  } catch {
    showFormError(form, "The control plane did not answer: check that it is running and try again.");
  }
  status?.focus();
}

// switchOrg moves the session to another organization of the user (POST
// /auth/switch rotates the cookie) and opens the overview there: the page
// at hand may be of an object of the organization left.
async function switchOrg(form: HTMLFormElement) {
  const select = $<HTMLSelectElement>("select", form);
  if (!select) return;
  const token = await csrfToken();
  const headers: Record<string, string> = { "Content-Type": "application/json", Accept: "application/json" };
  if (token) headers["X-CSRF-Token"] = token;
  try {
    const r = await fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers,
      body: JSON.stringify({ organizationId: select.value }),
    });
    if (r.ok) {
      location.assign("/");
      return;
    }
    let msg = `Switching failed (${r.status}).`;
    try {
      const e = await r.json();
      msg = String(e.error ?? e.message ?? msg);
    } catch {
      // not JSON
    }
    showFormError(form, sentence(msg) + " Reload the page and try again.");
  } catch {
    showFormError(form, "The control plane did not answer: check that it is running and try again.");
  }
}

// ---- invites ---------------------------------------------------------------

// An invite link is /signin#invite=ryd_inv_...: the fragment never reaches
// the server. A signed-in user joins (JoinOrganization) and moves there; a
// person without an account signs up with it (AcceptInvite) and signs in.
async function connectCall(method: string, body: unknown): Promise<Record<string, unknown>> {
  const token = await csrfToken();
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (token) headers["X-CSRF-Token"] = token;
  const r = await fetch(`/${method}`, { method: "POST", credentials: "same-origin", headers, body: JSON.stringify(body) });
  const out = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(sentence(String(out.message ?? out.error ?? `the request failed (${r.status})`)));
  return out;
}

async function startJoin() {
  const section = $<HTMLElement>("#join");
  const m = /(?:^#|&)invite=([^&]+)/.exec(location.hash);
  if (!section || !m) return;
  const invite = decodeURIComponent(m[1]);
  section.hidden = false;
  const member = $<HTMLFormElement>("form[data-join-member]", section)!;
  const signup = $<HTMLFormElement>("form[data-join-new]", section)!;
  const signedIn = (await csrfToken()) !== "";
  if (signedIn) {
    try {
      const sum = await connectCall("gitpod.v1.OrganizationService/GetOrganizationInviteSummary", { inviteId: invite });
      $("#join-what")!.textContent = `You were invited to ${String(sum.organizationName ?? "an organization")}.`;
      member.hidden = false;
      member.dataset.org = String(sum.organizationId ?? "");
    } catch (e) {
      showFormError(signup, `${(e as Error).message} Ask an admin for a new invite.`);
    }
  }
  member.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await connectCall("gitpod.v1.OrganizationService/JoinOrganization", { inviteId: invite });
      await connectCall("auth/switch", { organizationId: member.dataset.org });
      history.replaceState(null, "", "/signin");
      location.assign("/");
    } catch (e) {
      showFormError(member, (e as Error).message);
    }
  });
  signup.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = Object.fromEntries(new FormData(signup) as unknown as Iterable<[string, string]>);
    try {
      await connectCall("runyard.v1.UserAdminService/AcceptInvite", { inviteId: invite, ...data });
      const r = await fetch("/auth/password", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ email: data.email, password: data.password }),
      });
      if (!r.ok) throw new Error("The account was made, but signing in failed: sign in below.");
      history.replaceState(null, "", "/signin");
      location.assign("/");
    } catch (e) {
      showFormError(signup, (e as Error).message);
    }
  });
}

async function signout() {
  const token = await csrfToken();
  const headers: Record<string, string> = {};
  if (token) headers["X-CSRF-Token"] = token;
  try {
    await fetch("/auth/signout", { method: "POST", headers, credentials: "same-origin" });
  } finally {
    location.assign("/signin");
  }
}

document.addEventListener("submit", (ev) => {
  const form = ev.target as HTMLFormElement;
  if (form.matches("form[data-post]")) {
    ev.preventDefault();
    void post(form, ev.submitter);
  } else if (form.matches("form[data-signin]")) {
    ev.preventDefault();
    void signin(form);
  } else if (form.matches("form[data-switch]")) {
    ev.preventDefault();
    void switchOrg(form);
  } else if (form.matches("form[data-signout]")) {
    ev.preventDefault();
    void signout();
  }
});

document.addEventListener("click", (ev) => {
  const btn = (ev.target as Element).closest<HTMLButtonElement>("button[data-copy]");
  if (!btn) return;
  const src = document.getElementById(btn.dataset.copy!);
  if (!src) return;
  void navigator.clipboard?.writeText(src.textContent ?? "").then(() => {
    const was = btn.textContent;
    btn.textContent = "Copied";
    setTimeout(() => (btn.textContent = was), 1500);
  });
});

window.addEventListener("popstate", () => location.reload());

refreshTimes();
setInterval(refreshTimes, 15000);
startLive();
startLog();
startEditor();
void startJoin();
// The page is interactive: tests and bench/console wait for this.
performance.mark("runyard-ready");
document.documentElement.dataset.ready = "true";
