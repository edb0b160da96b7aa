// The pod terminal island: xterm.js over the REST API's terminal WebSocket
// (GET /api/v1/orgs/{org}/pods/{key}/terminal). The server sends a status
// event, the pod's scrollback and then its output (binary); the page sends
// input (binary) and resize events. A dropped connection re-attaches to the
// same pod session, whose scrollback the server replays; a read-only viewer
// attaches with readonly=1 and sends nothing.
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import "@xterm/xterm/css/xterm.css";

const host = document.getElementById("terminal");

// xterm.js writes its geometry and theme into <style> elements it creates;
// the page's Content-Security-Policy admits them only with its nonce.
function withNonce<T>(nonce: string, fn: () => T): T {
  const create = document.createElement;
  document.createElement = function (this: Document, tag: string, opts?: ElementCreationOptions) {
    const el = create.call(this, tag, opts);
    if (tag.toLowerCase() === "style") el.setAttribute("nonce", nonce);
    return el;
  } as typeof document.createElement;
  try {
    return fn();
  } finally {
    document.createElement = create;
  }
}

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

if (host) {
  const readonly = host.dataset.readonly === "true";
  const status = document.getElementById("terminal-status");
  const say = (s: string, state = "") => {
    if (status) {
      status.textContent = s;
      status.dataset.state = state;
    }
  };
  const nonce = document.querySelector<HTMLMetaElement>('meta[name="csp-nonce"]')?.content ?? "";
  const term = new Terminal({
    cursorBlink: !readonly,
    disableStdin: readonly,
    convertEol: false,
    scrollback: 5000,
    fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
    fontSize: 14,
    theme: { background: cssVar("--term-bg", "#0b0d10"), foreground: cssVar("--term-fg", "#e6e6e6") },
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  withNonce(nonce, () => term.open(host));
  term.textarea?.setAttribute("aria-label", readonly ? "Pod terminal (read-only)" : "Pod terminal input");
  fit.fit();

  let ws: WebSocket | null = null;
  let ended = false;
  let attempts = 0;
  const send = (msg: object) => ws?.readyState === WebSocket.OPEN && ws.send(JSON.stringify(msg));
  const sendSize = () => !readonly && send({ type: "resize", cols: term.cols, rows: term.rows });

  const connect = () => {
    const u = new URL(host.dataset.ws!, location.href);
    u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (readonly) u.searchParams.set("readonly", "1");
    say(attempts ? "Reconnecting…" : "Connecting…", "connecting");
    const sock = new WebSocket(u);
    sock.binaryType = "arraybuffer";
    let first = true;
    sock.onopen = () => {
      attempts = 0;
      say(readonly ? "Attached (read-only)" : "Attached", "live");
      sendSize();
    };
    sock.onmessage = (ev) => {
      if (ev.data instanceof ArrayBuffer) {
        if (first) {
          // The scrollback is replayed on every attach: start clean.
          term.reset();
          first = false;
        }
        term.write(new Uint8Array(ev.data));
        return;
      }
      const msg = JSON.parse(String(ev.data));
      if (msg.type === "exit") {
        ended = true;
        const code = msg.exit_code !== undefined ? ` with code ${msg.exit_code}` : "";
        say(`The pod ended${code}${msg.reason ? ": " + msg.reason : ""}.`, "ended");
      } else if (msg.type === "status" && msg.status !== "running") {
        say(`The pod is ${msg.status}${msg.reason ? ": " + msg.reason : ""}.`, msg.status);
      } else if (msg.type === "error") {
        say(`The terminal refused a message: ${msg.error}`, "error");
      }
    };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      ws = null;
      if (ended) return;
      if (ev.code === 1008 || ev.code === 4401 || ev.code === 4403) {
        say("The terminal was refused: sign in again, or ask for the pods:write permission.", "error");
        return;
      }
      attempts++;
      const delay = Math.min(10000, 300 * 2 ** Math.min(attempts, 5)) * (0.5 + Math.random() / 2);
      say(`Connection lost; reconnecting in ${Math.round(delay / 1000)} s…`, "connecting");
      setTimeout(connect, delay);
    };
    ws = sock;
  };

  // Copy and paste as in a desktop terminal: Ctrl+Shift+C (or Ctrl+C while
  // text is selected, Cmd+C on a Mac) copies the selection; Ctrl+Shift+V
  // (Cmd+V) is the browser's paste, which xterm.js types into the session
  // (bracketed when the program asked for it). A plain Ctrl+C with nothing
  // selected stays the interrupt, a plain Ctrl+V the literal ^V.
  term.attachCustomKeyEventHandler((ev) => {
    if (ev.type !== "keydown") return true;
    const key = ev.key.toLowerCase();
    const mod = ev.metaKey || (ev.ctrlKey && ev.shiftKey);
    if (key === "c" && (mod || (ev.ctrlKey && term.hasSelection()))) {
      if (term.hasSelection()) {
        void navigator.clipboard?.writeText(term.getSelection()).then(() => {
          host.dataset.copied = String(Date.now());
        });
        if (!ev.metaKey) term.clearSelection();
      }
      ev.preventDefault();
      return false;
    }
    // Left to the browser, whose paste event xterm.js handles.
    if (key === "v" && mod) return false;
    return true;
  });
  // For the browser tests, which drive xterm.js's selection API.
  (host as HTMLElement & { terminal?: Terminal }).terminal = term;

  if (!readonly) {
    const enc = new TextEncoder();
    term.onData((d) => ws?.readyState === WebSocket.OPEN && ws.send(enc.encode(d)));
    term.onBinary((d) => {
      const b = new Uint8Array(d.length);
      for (let i = 0; i < d.length; i++) b[i] = d.charCodeAt(i) & 0xff;
      if (ws?.readyState === WebSocket.OPEN) ws.send(b);
    });
  }
  let resizeTimer: number | undefined;
  const onResize = () => {
    clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(() => {
      fit.fit();
      sendSize();
    }, 100);
  };
  window.addEventListener("resize", onResize);
  new ResizeObserver(onResize).observe(host);
  term.onResize(() => {
    host.dataset.cols = String(term.cols);
    host.dataset.rows = String(term.rows);
  });
  host.dataset.cols = String(term.cols);
  host.dataset.rows = String(term.rows);
  connect();
  if (!readonly) term.focus();
}
