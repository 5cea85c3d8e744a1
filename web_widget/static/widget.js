/* Centralita call widget: <centralita-phone>, one script tag on any page.
 *
 *   <script src="https://HOST/widget.js" data-server="https://HOST"
 *           data-token="WIDGET_TOKEN"></script>
 *
 * Shadow DOM keeps the host page's styles out and ours in. The agent socket
 * (/ws/agent) carries numbered messages; after a drop the widget reconnects
 * with back-off and says the last number it handled, so nothing is lost or
 * shown twice. No framework: the DOM is built with el() and textContent only
 * (never innerHTML with data), so a caller's name cannot inject markup.
 */
(function () {
  "use strict";
  if (customElements.get("centralita-phone")) return;

  var script = document.currentScript;
  var scriptSrc = script && script.src ? new URL(script.src, location.href) : null;
  var LABELS = {
    es: {
      open: "Abrir teléfono", close: "Cerrar", call: "Llamar", sms: "SMS", number: "Número",
      contacts: "Contactos", history: "Historial", team: "Equipo", dialer: "Marcador",
      search: "Buscar nombre, empresa o teléfono", noResults: "Sin resultados",
      missed: "Perdida", answered: "Atendida", busy_call: "Ocupado", reject: "Rechazar",
      callBack: "Devolver llamada", incoming: "Entrante", outgoing: "Saliente",
      ringing: "Sonando", inCall: "En llamada", held: "En espera", hangup: "Colgar",
      hold: "Espera", resume: "Reanudar", mute: "Silenciar", unmute: "Activar micro",
      transfer: "Transferir", blind: "Ciega", attended: "Atendida", keypad: "Teclado",
      notes: "Notas de la llamada", saveNote: "Guardar nota", noteSaved: "Nota guardada",
      profile: "Ver ficha", lastCalls: "Últimas llamadas", lastNotes: "Notas",
      unknown: "Número desconocido", newLead: "Nuevo lead", pbxDown: "Centralita: PBX desconectada",
      reconnecting: "Reconectando…", signIn: "Iniciar sesión", user: "Usuario",
      password: "Contraseña", signInFailed: "Usuario o contraseña incorrectos",
      noToken: "Falta el token del widget (data-token)", online: "Disponible",
      offline: "Desconectado", busy: "Ocupado", away: "Ausente", lagged: "sin latido",
      answeredElsewhere: "Atendida por", dialing: "Llamando a", pick: "Elige un número",
      noTeam: "Sin compañeros", noCampaigns: "Sin campañas activas", smsText: "Mensaje",
      smsOff: "SMS no disponible: este servidor aún no tiene Twilio",
      send: "Enviar", sessionEnded: "La sesión ha caducado", transferTo: "Transferir a",
      you: "tú", error: "Error",
    },
    en: {
      open: "Open phone", close: "Close", call: "Call", sms: "SMS", number: "Number",
      contacts: "Contacts", history: "History", team: "Team", dialer: "Dialer",
      search: "Search name, company or phone", noResults: "No results",
      missed: "Missed", answered: "Answered", busy_call: "Busy", reject: "Decline",
      callBack: "Call back", incoming: "Incoming", outgoing: "Outgoing",
      ringing: "Ringing", inCall: "In call", held: "On hold", hangup: "Hang up",
      hold: "Hold", resume: "Resume", mute: "Mute", unmute: "Unmute",
      transfer: "Transfer", blind: "Blind", attended: "Attended", keypad: "Keypad",
      notes: "Call notes", saveNote: "Save note", noteSaved: "Note saved",
      profile: "Open profile", lastCalls: "Last calls", lastNotes: "Notes",
      unknown: "Unknown number", newLead: "New lead", pbxDown: "Centralita: PBX disconnected",
      reconnecting: "Reconnecting…", signIn: "Sign in", user: "Username",
      password: "Password", signInFailed: "Wrong username or password",
      noToken: "The widget token is missing (data-token)", online: "Available",
      offline: "Offline", busy: "Busy", away: "Away", lagged: "no heartbeat",
      answeredElsewhere: "Answered by", dialing: "Calling", pick: "Pick a number",
      noTeam: "No teammates", noCampaigns: "No active campaigns", smsText: "Message",
      smsOff: "SMS is not available: this server has no Twilio yet",
      send: "Send", sessionEnded: "Your session has expired", transferTo: "Transfer to",
      you: "you", error: "Error",
    },
  };
  var ICONS = {
    phone: "M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.25 11.4 11.4 0 0 0 3.6.57 1 1 0 0 1 1 1V20a1 1 0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.25.2 2.45.57 3.57a1 1 0 0 1-.25 1z",
    sms: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z",
    close: "M6 6l12 12M18 6L6 18",
    transfer: "M7 7h11l-3-3M17 17H6l3 3",
    pause: "M8 5h3v14H8zM13 5h3v14h-3z",
    mic: "M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3zM5 11a7 7 0 0 0 14 0M12 18v3",
    grid: "M6 6h.01M12 6h.01M18 6h.01M6 12h.01M12 12h.01M18 12h.01M6 18h.01M12 18h.01M18 18h.01",
  };

  function el(tag, attrs) {
    var node = document.createElement(tag);
    var kids = Array.prototype.slice.call(arguments, 2);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), value);
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : value);
    });
    (function add(list) {
      list.forEach(function (kid) {
        if (kid === null || kid === undefined || kid === false) return;
        if (Array.isArray(kid)) return add(kid);
        node.appendChild(typeof kid === "string" ? document.createTextNode(kid) : kid);
      });
    })(kids);
    return node;
  }

  function icon(name, cls) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("class", "icon " + (cls || ""));
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", ICONS[name]);
    svg.appendChild(path);
    return svg;
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "k" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function two(n) { return (n < 10 ? "0" : "") + n; }

  function clock(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var h = Math.floor(s / 3600);
    var mm = two(Math.floor((s % 3600) / 60)) + ":" + two(s % 60);
    return h ? h + ":" + mm : mm;
  }

  function initials(name) {
    var words = String(name || "").trim().split(/\s+/).filter(Boolean);
    return words.length ? words.slice(0, 2).map(function (w) { return w[0]; }).join("").toUpperCase() : "?";
  }

  function when(value) {
    if (!value) return "";
    var date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    if (isNaN(date.getTime())) return "";
    return date.toLocaleString([], { day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit" });
  }

  function contactName(c) {
    if (!c) return "";
    var person = [c.first_name, c.last_name].filter(Boolean).join(" ");
    return c.name || person || c.company_name || c.company || "";
  }

  class CentralitaPhone extends HTMLElement {
    constructor() {
      super();
      this.root = this.attachShadow({ mode: "open" });
      this.calls = new Map();
      this.team = new Map();
      this.lastSeq = null;
      this.epoch = null;
      this.backoff = 0;
      this.pbxDown = false;
      this.pendingDial = null;
      this.micAsked = false;
    }

    connectedCallback() {
      var ds = (script && script.dataset) || {};
      this.server = (this.getAttribute("server") || ds.server || (scriptSrc ? scriptSrc.origin : location.origin)).replace(/\/$/, "");
      this.token = this.getAttribute("token") || ds.token || null;
      this.csrf = this.getAttribute("csrf") || ds.csrf || null;
      // Where the host page hands out fresh widget tokens (its own origin, its own session).
      this.tokenUrl = this.getAttribute("token-url") || ds.tokenUrl || null;
      this.phoneMode = this.getAttribute("phone-mode") || ds.phoneMode || "desk";
      // Spanish unless the tag or the host page asks for English.
      var lang = (this.getAttribute("lang") || ds.lang || document.documentElement.lang || "es").slice(0, 2);
      this.t = LABELS[lang] || LABELS.es;
      this.sameOrigin = location.origin === this.server;
      if (!this.token && !this.csrf && this.sameOrigin) {
        // Signed in on Centralita's own pages: the session cookie plus the CSRF token that
        // the sign-in answer gave (kept by /login), never the session token itself.
        this.csrf = localStorage.getItem("centralita.csrf");
      }
      this.build();
      this.bindHostPage();
      this.start();
    }

    disconnectedCallback() {
      this.stopped = true;
      if (this.ws) this.ws.close();
      clearInterval(this.pinger);
      clearInterval(this.ticker);
      clearTimeout(this.retry);
    }

    // -- the frame ---------------------------------------------------------

    build() {
      var t = this.t;
      var self = this;
      this.root.appendChild(el("link", { rel: "stylesheet", href: this.server + "/widget.css" }));
      this.banner = el("div", { class: "banner", role: "alert", hidden: true, text: t.pbxDown });
      this.toastBox = el("div", { class: "toast", role: "status", hidden: true });
      this.launcher = el("button", { class: "launcher", part: "launcher", title: t.open, "aria-label": t.open,
        onclick: function () { self.toggle(); } }, icon("phone"), el("span", { class: "badge", hidden: true }));
      this.statusSelect = el("select", { class: "presence", "aria-label": "presence",
        onchange: function () { self.send({ type: "presence", status: self.statusSelect.value }); } },
        ["online", "busy", "away", "offline"].map(function (s) { return el("option", { value: s, text: t[s] }); }));
      this.linkDot = el("span", { class: "link-dot", title: t.reconnecting });
      this.whoami = el("span", { class: "whoami" });
      var header = el("header", {},
        el("div", { class: "brand" }, el("span", { class: "logo" }, icon("phone")), el("b", { text: "Centralita" }), this.linkDot),
        this.whoami, this.statusSelect,
        el("button", { class: "ghost close", title: t.close, "aria-label": t.close, onclick: function () { self.toggle(false); } }, icon("close")));
      this.main = el("div", { class: "main" }, this.buildDialpad(), this.buildTabs());
      this.callView = el("div", { class: "callview", hidden: true });
      this.signin = this.buildSignin();
      this.stage = el("div", { class: "stage" }, this.main, this.callView, this.signin);
      this.panel = el("section", { class: "panel", hidden: true, part: "panel" }, header, this.banner, this.stage, this.toastBox);
      this.root.appendChild(this.panel);
      this.root.appendChild(this.launcher);
    }

    buildDialpad() {
      var t = this.t;
      var self = this;
      this.display = el("input", { class: "display", type: "tel", placeholder: t.number, "aria-label": t.number,
        onkeydown: function (e) { if (e.key === "Enter") self.dial(self.display.value); } });
      var keys = el("div", { class: "keys" });
      [["1", ""], ["2", "ABC"], ["3", "DEF"], ["4", "GHI"], ["5", "JKL"], ["6", "MNO"], ["7", "PQRS"], ["8", "TUV"],
       ["9", "WXYZ"], ["*", ""], ["0", "+"], ["#", ""]].forEach(function (k) {
        keys.appendChild(el("button", { class: "key", "data-key": k[0], onclick: function () {
          self.display.value += k[0]; self.display.focus(); } }, el("b", { text: k[0] }), el("small", { text: k[1] })));
      });
      this.smsBox = el("div", { class: "sms", hidden: true },
        el("textarea", { rows: "2", placeholder: t.smsText, "aria-label": t.smsText }),
        el("button", { class: "secondary", text: t.send, onclick: function () { self.sendSms(); } }));
      return el("div", { class: "dialpad" }, this.display, keys,
        el("div", { class: "dial-actions" },
          el("button", { class: "call", "aria-label": t.call, title: t.call, onclick: function () { self.dial(self.display.value); } }, icon("phone"), el("span", { text: t.call })),
          this.smsButton = el("button", { class: "secondary sms-toggle", "aria-label": t.sms, title: t.smsOff, disabled: true, onclick: function () { self.smsBox.hidden = !self.smsBox.hidden; } }, icon("sms"), el("span", { text: t.sms }))),
        this.smsBox);
    }

    buildTabs() {
      var t = this.t;
      var self = this;
      this.panes = {};
      this.tabButtons = {};
      var bar = el("nav", { class: "tabs", role: "tablist" });
      var holder = el("div", { class: "panes" });
      ["contacts", "history", "team", "dialer"].forEach(function (name) {
        var button = el("button", { role: "tab", "data-tab": name, text: t[name], onclick: function () { self.showTab(name); } });
        self.tabButtons[name] = button;
        bar.appendChild(button);
        self.panes[name] = el("div", { class: "pane", "data-pane": name, role: "tabpanel", hidden: true });
        holder.appendChild(self.panes[name]);
      });
      this.searchBox = el("input", { class: "search", type: "search", placeholder: t.search, "aria-label": t.search,
        oninput: function () { clearTimeout(self.searchTimer); self.searchTimer = setTimeout(function () { self.searchContacts(); }, 250); } });
      this.contactList = el("ul", { class: "list" });
      this.panes.contacts.appendChild(this.searchBox);
      this.panes.contacts.appendChild(this.contactList);
      this.historyList = el("ul", { class: "list" });
      this.panes.history.appendChild(this.historyList);
      this.teamList = el("ul", { class: "list" });
      this.panes.team.appendChild(this.teamList);
      this.dialerList = el("ul", { class: "list" }, el("li", { class: "empty", text: t.noCampaigns }));
      this.panes.dialer.appendChild(this.dialerList);
      var side = el("div", { class: "side" }, bar, holder);
      this.showTab("contacts");
      return side;
    }

    buildSignin() {
      var t = this.t;
      var self = this;
      var user = el("input", { name: "username", autocomplete: "username", placeholder: t.user, "aria-label": t.user, required: true });
      var pass = el("input", { name: "password", type: "password", autocomplete: "current-password", placeholder: t.password, "aria-label": t.password, required: true });
      this.signinError = el("p", { class: "error", hidden: true });
      return el("form", { class: "signin", hidden: true, onsubmit: function (e) { e.preventDefault(); self.login(user.value, pass.value); } },
        el("span", { class: "logo big" }, icon("phone")), el("h2", { text: t.signIn }), user, pass, this.signinError,
        el("button", { class: "call wide", type: "submit", text: t.signIn }));
    }

    showTab(name) {
      var self = this;
      Object.keys(this.panes).forEach(function (key) {
        self.panes[key].hidden = key !== name;
        self.tabButtons[key].setAttribute("aria-selected", key === name ? "true" : "false");
      });
      this.tab = name;
      if (!this.ready) return;
      if (name === "history") this.loadHistory();
      if (name === "team") this.loadTeam();
      if (name === "contacts" && !this.contactList.childNodes.length) this.searchContacts();
    }

    toggle(open) {
      var show = open === undefined ? this.panel.hidden : open;
      this.panel.hidden = !show;
      this.launcher.classList.toggle("active", show);
      this.launcher.replaceChild(icon(show ? "close" : "phone"), this.launcher.firstChild);
      if (show && this.ready && this.tab) this.showTab(this.tab);
    }

    toast(text, kind) {
      var box = this.toastBox;
      box.textContent = text;
      box.className = "toast " + (kind || "");
      box.hidden = false;
      clearTimeout(this.toastTimer);
      this.toastTimer = setTimeout(function () { box.hidden = true; }, 4000);
    }

    // -- the server ----------------------------------------------------------

    api(method, path, body, extraHeaders, retried) {
      var headers = Object.assign({ Accept: "application/json" }, extraHeaders || {});
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (this.token) headers.Authorization = "Bearer " + this.token;
      else if (this.csrf && method !== "GET") headers["X-CSRF-Token"] = this.csrf;
      var self = this;
      return fetch(this.server + path, {
        method: method, headers: headers, credentials: this.token ? "omit" : "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      }).then(function (res) {
        return res.text().then(function (text) {
          var data = {};
          try { data = text ? JSON.parse(text) : {}; } catch (e) { data = {}; }  // a proxy's HTML page
          if (res.status === 401 && self.token && self.tokenUrl && !retried) {
            // Widget tokens are short-lived: ask the host page's back end for a fresh one.
            return self.refreshToken().then(function () {
              return self.api(method, path, body, extraHeaders, true);
            }, function () { self.sessionLost(); throw new Error(self.t.sessionEnded); });
          }
          if (res.status === 401) self.sessionLost();
          if (!res.ok) {
            var err = new Error((data.error && data.error.message) || res.statusText);
            err.status = res.status;
            throw err;
          }
          return data;
        });
      });
    }

    refreshToken() {
      var self = this;
      if (!this.refreshing) {
        this.refreshing = fetch(this.tokenUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (res) { if (!res.ok) throw new Error(res.statusText); return res.json(); })
          .then(function (data) { if (!data.token) throw new Error("no token"); self.token = data.token; })
          .finally(function () { self.refreshing = null; });
      }
      return this.refreshing;
    }

    start() {
      var self = this;
      if (this.token) return this.connect();
      if (!this.sameOrigin) {
        this.main.hidden = true;
        this.signin.hidden = true;
        this.panel.appendChild(el("p", { class: "error pad", text: this.t.noToken }));
        return;
      }
      // Served by Centralita itself: a live session cookie is enough, else our own sign-in.
      this.api("GET", "/api/me").then(function () {
        if (self.csrf) self.connect(); else self.showSignin();
      }, function () { self.showSignin(); });
    }

    showSignin() {
      this.main.hidden = true;
      this.callView.hidden = true;
      this.signin.hidden = false;
      this.toggle(true);
    }

    login(username, password) {
      var self = this;
      this.api("POST", "/api/auth/login", { username: username, password: password }).then(function (data) {
        self.csrf = data.csrf_token;
        localStorage.setItem("centralita.csrf", data.csrf_token);
        self.stopped = false;
        self.signin.hidden = true;
        self.main.hidden = false;
        self.connect();
      }, function () {
        self.signinError.textContent = self.t.signInFailed;
        self.signinError.hidden = false;
      });
    }

    sessionLost() {
      this.stopped = true;
      if (this.ws) this.ws.close();
      if (this.sameOrigin && !this.token) {
        localStorage.removeItem("centralita.csrf");
        this.csrf = null;
        this.showSignin();
      } else this.toast(this.t.sessionEnded, "bad");
    }

    socketUrl() {
      var url = new URL(this.server.replace(/^http/, "ws") + "/ws/agent");
      if (this.token) url.searchParams.set("token", this.token);
      if (this.lastSeq !== null) {
        url.searchParams.set("resume", String(this.lastSeq));
        if (this.epoch) url.searchParams.set("epoch", this.epoch);
      }
      return url.toString();
    }

    connect() {
      if (this.stopped) return;
      var self = this;
      var ws = new WebSocket(this.socketUrl());
      this.ws = ws;
      ws.onopen = function () {
        if (self.lastSeq === null) ws.send(JSON.stringify({ type: "hello", last_seq: null }));
      };
      ws.onmessage = function (event) { self.receive(JSON.parse(event.data)); };
      ws.onclose = function (event) {
        clearInterval(self.pinger);
        self.linkDot.classList.remove("up");
        if (self.ws !== ws || self.stopped) return;
        if (!self.greeted) { self.probeSession(); }
        // Back-off with jitter: 0.5 s doubling to 15 s, so a restarted server is not stampeded.
        var wait = Math.min(15000, 500 * Math.pow(2, self.backoff++)) * (0.75 + Math.random() / 2);
        self.retry = setTimeout(function () { self.connect(); }, wait);
        self.greeted = false;
      };
    }

    probeSession() {
      // A socket refused before "hello" may be an expired token: ask the API, which says 401.
      this.api("GET", "/api/me").catch(function () {});
    }

    send(message) {
      if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(message));
    }

    receive(msg) {
      if (msg.type === "hello") return this.greet(msg);
      if (msg.type === "resync") return this.resync(msg);
      if (msg.type === "pong" || msg.type === "error") return;
      if (typeof msg.seq === "number") {
        if (this.lastSeq !== null && msg.seq <= this.lastSeq) return;  // already handled
        this.lastSeq = msg.seq;
      }
      this.handle(msg);
    }

    greet(msg) {
      var self = this;
      this.greeted = true;
      this.backoff = 0;
      this.epoch = msg.epoch;
      this.me = msg.agent;
      this.whoami.textContent = (msg.name || msg.user) + " · " + msg.agent;
      this.linkDot.classList.add("up");
      this.ready = true;
      this.smsButton.disabled = !msg.sms;  // the server says whether it has an SMS channel
      this.smsButton.title = msg.sms ? this.t.sms : this.t.smsOff;
      if (!msg.sms) this.smsBox.hidden = true;
      clearInterval(this.pinger);
      this.pinger = setInterval(function () { self.send({ type: "ping", t: Date.now() }); }, (msg.heartbeat_s || 15) * 1000);
      if (this.tab && !this.panel.hidden) this.showTab(this.tab);
      this.loadTeam();  // the transfer list needs the roster before the first call
      this.dispatchEvent(new CustomEvent("centralita:ready", { detail: { agent: msg.agent } }));
    }

    resync(msg) {
      var self = this;
      this.lastSeq = msg.seq;
      this.epoch = msg.epoch;
      this.calls.clear();
      (msg.calls || []).forEach(function (entry) {
        self.calls.set(entry.call.call_id, { call: entry.call, card: entry.card || null });
      });
      this.team.clear();
      (msg.team || []).forEach(function (p) { self.team.set(p.agent, p); });
      var pbx = msg.pbx || {};
      this.setPbx(Object.keys(pbx).some(function (k) { return pbx[k] === false; }));
      this.renderCall();
    }

    handle(msg) {
      var entry;
      switch (msg.type) {
        case "screen_pop":
          entry = this.entry(msg.call_id);
          entry.card = msg.card;
          this.toggle(true);
          break;
        case "call.ringing": case "call.answered": case "call.held": case "call.resumed":
        case "call.transferred": case "call.dtmf":
          entry = this.entry(msg.call.call_id);
          entry.call = msg.call;
          if (msg.type === "call.answered" && !entry.answeredAt) entry.answeredAt = Date.now();
          if (msg.type === "call.ringing") this.toggle(true);
          break;
        case "call.answered_elsewhere":
          this.calls.delete(msg.call_id);
          this.toast(this.t.answeredElsewhere + " " + this.teammateName(msg.answered_by));
          break;
        case "call.ended":
          this.calls.delete(msg.call.call_id);
          if (this.tab === "history" && !this.panel.hidden) this.loadHistory();
          break;
        case "presence":  // changes come in batches: a whole shift signing in is one message
          msg.agents.forEach(function (agent) {
            this.team.set(agent.agent, agent);
            if (agent.agent === this.me) this.statusSelect.value = agent.status;
          }, this);
          if (this.tab === "team" && !this.panel.hidden) this.renderTeam();
          break;
        case "pbx.offline": this.setPbx(true); break;
        case "pbx.online": this.setPbx(false); break;
        default:
          if (msg.type && msg.type.indexOf("dialer.") === 0) this.renderDialer(msg);
      }
      // Only call news redraws the card: a teammate's presence must not steal the notes' focus.
      if (msg.type === "screen_pop" || msg.type.indexOf("call.") === 0) this.renderCall();
      this.dispatchEvent(new CustomEvent("centralita:message", { detail: msg }));
    }

    teammateName(extension) {
      var live = this.team.get(extension);
      var listed = (this.roster || []).filter(function (u) { return u.extension === extension; })[0];
      return (listed && listed.name) || (live && live.name !== extension && live.name) || extension;
    }

    entry(callId) {
      if (!this.calls.has(callId)) this.calls.set(callId, { call: { call_id: callId, state: "ringing" }, card: null });
      return this.calls.get(callId);
    }

    setPbx(down) {
      this.pbxDown = down;
      this.banner.hidden = !down;
      this.launcher.classList.toggle("alarm", down);
    }

    // -- the call card and its controls ----------------------------------------

    currentCall() {
      var found = null;
      this.calls.forEach(function (entry) {
        if (!found || (entry.call.state !== "ringing" && found.call.state === "ringing")) found = entry;
      });
      return found;
    }

    renderCall() {
      var entry = this.currentCall();
      var badge = this.launcher.querySelector(".badge");
      badge.hidden = !entry;
      this.launcher.classList.toggle("ringing", !!entry && entry.call.state === "ringing");
      clearInterval(this.ticker);
      this.callView.textContent = "";
      this.callView.hidden = !entry;
      if (!this.signin.hidden) this.callView.hidden = true;
      if (!entry) return;
      var call = entry.call;
      var t = this.t;
      var self = this;
      var card = entry.card || {};
      var party = call.direction === "out" ? call.callee : call.caller;
      var stateText = { ringing: t.ringing, up: t.inCall, held: t.held, transferred: t.transfer }[call.state] || call.state;
      var timer = el("span", { class: "timer" });
      var tick = function () {
        // The PBX's clock, unless it is far from ours (then from when we saw the answer).
        var pbx = call.answered_at ? call.answered_at * 1000 : null;
        var since = pbx && Math.abs(Date.now() - pbx) < 43200000 ? pbx : (entry.answeredAt || Date.now());
        timer.textContent = call.state === "ringing" ? "" : clock((Date.now() - since) / 1000);
      };
      tick();
      this.ticker = setInterval(tick, 1000);
      var tags = el("div", { class: "tags" }, (card.tags || []).map(function (tag) { return el("span", { class: "tag", text: String(tag) }); }));
      var profile = card.profile || card.profile_url || card.url || card.link;
      this.callView.appendChild(el("div", { class: "card state-" + call.state, "data-call": call.call_id },
        el("div", { class: "card-head" },
          el("div", { class: "avatar", text: initials(contactName(card)) }),
          el("div", { class: "who" },
            el("div", { class: "name", text: contactName(card) || (card.kind === "lead" ? t.newLead : t.unknown) }),
            el("div", { class: "company", text: card.company || card.company_name || "" }),
            el("div", { class: "number", text: party || "" })),
          el("div", { class: "state" }, el("span", { class: "pill", text: stateText }), timer)),
        tags, this.cardHistory(card, call.call_id),
        profile ? el("a", { class: "profile", href: new URL(profile, this.server).toString(), target: "_blank", rel: "noopener", text: t.profile + " →" }) : null));
      this.callView.appendChild(this.controls(entry));
    }

    cardHistory(card, current) {
      var t = this.t;
      var calls = (card.last_calls || card.calls || []).filter(function (c) {
        return c.call_id !== current && c.id !== current;
      });
      var notes = card.last_notes || card.notes || [];
      var deals = card.open_deals || card.deals || [];
      if (!calls.length && !notes.length && !deals.length) return null;
      return el("div", { class: "recent" },
        deals.length ? el("div", { class: "deals" }, deals.map(function (d) { return el("span", { class: "deal", text: d.title || d.name || String(d) }); })) : null,
        calls.length ? el("h4", { text: t.lastCalls }) : null,
        calls.slice(0, 5).map(function (c) {
          var disp = c.disposition || c.status || "";
          return el("div", { class: "line" }, el("span", { text: when(c.started_at) + " · " + (c.direction === "out" ? t.outgoing : t.incoming) }),
            el("span", { class: "disp " + disp, text: t[disp] || disp }));
        }),
        notes.length ? el("h4", { text: t.lastNotes }) : null,
        notes.slice(0, 3).map(function (n) { return el("p", { class: "note", text: n.text || String(n) }); }));
    }

    controls(entry) {
      var t = this.t;
      var self = this;
      var call = entry.call;
      var id = encodeURIComponent(call.call_id);
      var act = function (verb, body) {
        return function () {
          self.api("POST", "/api/calls/" + id + "/" + verb, body).then(function () {
            if (verb === "mute" || verb === "unmute") { entry.muted = verb === "mute"; self.renderCall(); }
          }, function (err) { self.toast(t.error + ": " + err.message, "bad"); });
        };
      };
      var live = call.state !== "ringing";
      var row = el("div", { class: "controls" },
        el("button", { class: "hangup", onclick: act("hangup") }, icon("phone"), el("span", { text: live ? t.hangup : t.reject })),
        live ? el("button", { class: "ctl", onclick: act(call.state === "held" ? "resume" : "hold") }, icon("pause"), el("span", { text: call.state === "held" ? t.resume : t.hold })) : null,
        live ? el("button", { class: "ctl" + (entry.muted ? " on" : ""), onclick: act(entry.muted ? "unmute" : "mute") }, icon("mic"), el("span", { text: entry.muted ? t.unmute : t.mute })) : null,
        live ? el("button", { class: "ctl", onclick: function () { entry.panel = entry.panel === "transfer" ? null : "transfer"; self.renderCall(); } }, icon("transfer"), el("span", { text: t.transfer })) : null,
        live ? el("button", { class: "ctl", onclick: function () { entry.panel = entry.panel === "dtmf" ? null : "dtmf"; self.renderCall(); } }, icon("grid"), el("span", { text: t.keypad })) : null);
      var extra = null;
      if (entry.panel === "dtmf") {
        extra = el("div", { class: "keys small" }, "123456789*0#".split("").map(function (d) {
          return el("button", { class: "key", onclick: act("dtmf", { digits: d }) }, el("b", { text: d }));
        }));
      } else if (entry.panel === "transfer") {
        extra = this.transferPanel(act);
      }
      var note = el("textarea", { class: "notes", rows: "2", placeholder: t.notes, "aria-label": t.notes });
      note.value = entry.draft || "";
      note.addEventListener("input", function () { entry.draft = note.value; });
      var save = el("button", { class: "secondary", text: t.saveNote, onclick: function () {
        if (!note.value.trim()) return;
        self.api("POST", "/api/calls/" + id + "/notes", { text: note.value }).then(function () {
          entry.draft = ""; note.value = ""; self.toast(t.noteSaved, "good");
        }, function (err) { self.toast(t.error + ": " + err.message, "bad"); });
      } });
      return el("div", { class: "incall" }, row, extra, live ? el("div", { class: "notebox" }, note, save) : null);
    }

    transferPanel(act) {
      var t = this.t;
      var self = this;
      var list = el("ul", { class: "list compact" });
      // Everyone with an extension (the roster), coloured by live presence where known.
      var roster = (this.roster || []).filter(function (u) { return u.extension; }).map(function (u) {
        var live = self.team.get(u.extension) || {};
        return { agent: u.extension, name: u.name, status: live.status || u.status || "offline" };
      });
      var mates = (roster.length ? roster : Array.from(this.team.values())).filter(function (p) {
        return p.agent !== self.me && !/^user:/.test(p.agent);
      });
      if (!mates.length) list.appendChild(el("li", { class: "empty", text: t.noTeam }));
      mates.forEach(function (p) {
        list.appendChild(el("li", {}, el("span", { class: "dot " + p.status }), el("span", { class: "grow", text: p.name + " · " + p.agent }),
          el("button", { class: "chip", onclick: act("transfer", { to: p.agent, mode: "blind" }), text: t.blind }),
          el("button", { class: "chip", onclick: act("transfer", { to: p.agent, mode: "attended" }), text: t.attended })));
      });
      return el("div", { class: "transfer" }, el("h4", { text: t.transferTo }), list);
    }

    // -- dialling --------------------------------------------------------------

    dial(number, picked) {
      var t = this.t;
      var self = this;
      var numbers = String(number || "").split(",").map(function (n) { return n.trim(); }).filter(Boolean);
      if (!numbers.length) return;
      if (numbers.length > 1 && !picked) return this.pickNumber(numbers);
      var to = numbers[0];
      this.askMicrophone();
      // A double click reuses the first click's key, so the server dials once (B5).
      var now = Date.now();
      if (!this.pendingDial || this.pendingDial.to !== to || now - this.pendingDial.at > 3000) {
        this.pendingDial = { to: to, key: newKey(), at: now };
      }
      this.toggle(true);
      this.toast(t.dialing + " " + to);
      return this.api("POST", "/api/calls", { to: to }, { "Idempotency-Key": this.pendingDial.key })
        .catch(function (err) { self.toast(t.error + ": " + err.message, "bad"); });
    }

    pickNumber(numbers) {
      var self = this;
      this.toggle(true);
      var list = el("div", { class: "picker" }, el("h4", { text: this.t.pick }),
        numbers.map(function (n) {
          return el("button", { class: "chip", text: n, onclick: function () { list.remove(); self.dial(n, true); } });
        }));
      this.panel.appendChild(list);
    }

    askMicrophone() {
      if (this.micAsked || this.phoneMode !== "browser" || !navigator.mediaDevices) return;
      this.micAsked = true;
      navigator.mediaDevices.getUserMedia({ audio: true }).then(function (s) {
        s.getTracks().forEach(function (tr) { tr.stop(); });
      }, function () {});
    }

    sendSms() {
      var self = this;
      var text = this.smsBox.querySelector("textarea");
      this.api("POST", "/api/sms", { to: this.display.value, body: text.value }).then(function () {
        text.value = ""; self.smsBox.hidden = true;
      }, function (err) { self.toast(self.t.error + ": " + err.message, "bad"); });
    }

    bindHostPage() {
      var self = this;
      // tel: links and [data-centralita-call] anywhere on the host page become click-to-call.
      document.addEventListener("click", function (e) {
        var path = e.composedPath ? e.composedPath() : [e.target];
        for (var i = 0; i < path.length; i++) {
          var node = path[i];
          if (!node || !node.getAttribute || node === self) continue;
          var marked = node.getAttribute("data-centralita-call");
          var href = node.tagName === "A" ? node.getAttribute("href") || "" : "";
          if (marked !== null || href.slice(0, 4) === "tel:") {
            e.preventDefault();
            self.dial(marked || decodeURIComponent(href.slice(4)) || node.textContent);
            return;
          }
        }
      }, true);
    }

    // -- the tabs ----------------------------------------------------------------

    searchContacts() {
      var self = this;
      var q = this.searchBox.value.trim();
      this.api("GET", "/api/contacts?q=" + encodeURIComponent(q)).then(function (data) {
        self.contactList.textContent = "";
        var items = data.items || [];
        if (!items.length) self.contactList.appendChild(el("li", { class: "empty", text: self.t.noResults }));
        items.forEach(function (c) {
          var phones = (c.phones || []).map(function (p) { return p.number || p; });
          self.contactList.appendChild(el("li", {},
            el("div", { class: "avatar small", text: initials(contactName(c)) }),
            el("div", { class: "grow" }, el("div", { class: "name", text: contactName(c) }),
              el("div", { class: "sub", text: c.company_name || "" })),
            el("div", { class: "phones" }, phones.map(function (n) {
              return el("button", { class: "chip call-chip", title: self.t.call + " " + n, onclick: function () { self.dial(n, true); } }, icon("phone"), n);
            }))));
        });
      }, function () {});
    }

    loadHistory() {
      var self = this;
      var t = this.t;
      var agent = this.me && !/^user:/.test(this.me) ? "&agent=" + encodeURIComponent(this.me) : "";
      this.api("GET", "/api/calls?limit=30" + agent).then(function (data) {
        self.historyList.textContent = "";
        var items = data.items || [];
        if (!items.length) self.historyList.appendChild(el("li", { class: "empty", text: t.noResults }));
        items.forEach(function (c) {
          var other = c.direction === "out" ? c.callee : c.caller;
          var missed = c.disposition === "missed";
          self.historyList.appendChild(el("li", { class: missed ? "missed" : "" },
            el("span", { class: "dir " + c.direction, text: c.direction === "out" ? "↗" : "↙" }),
            el("div", { class: "grow" }, el("div", { class: "name", text: c.contact_name || other || "" }),
              el("div", { class: "sub", text: when(c.started_at) + (missed ? " · " + t.missed : c.duration_s ? " · " + clock(c.duration_s) : "") })),
            el("button", { class: missed ? "chip callback" : "chip", title: missed ? t.callBack : t.call, onclick: function () { self.dial(other, true); } },
              icon("phone"), missed ? t.callBack : "")));
        });
      }, function () {});
    }

    loadTeam() {
      var self = this;
      this.api("GET", "/api/widget/team").then(function (data) {
        self.roster = data.items || [];
        self.renderTeam();
      }, function () {});
    }

    renderTeam() {
      var self = this;
      var t = this.t;
      this.teamList.textContent = "";
      var roster = this.roster || [];
      if (!roster.length) this.teamList.appendChild(el("li", { class: "empty", text: t.noTeam }));
      var inCall = this.currentCall();
      roster.forEach(function (u) {
        var live = self.team.get(u.extension || "user:" + u.username) || u;
        var me = u.extension && u.extension === self.me;
        self.teamList.appendChild(el("li", {},
          el("span", { class: "dot " + (live.status || "offline") + (live.lagged ? " lagged" : ""), title: t[live.status || "offline"] + (live.lagged ? " (" + t.lagged + ")" : "") }),
          el("div", { class: "grow" }, el("div", { class: "name", text: u.name + (me ? " (" + t.you + ")" : "") }),
            el("div", { class: "sub", text: (u.extension || "—") + " · " + t[live.status || "offline"] })),
          u.extension && !me ? el("button", { class: "chip", title: inCall ? t.transfer : t.call, onclick: function () {
            if (inCall && inCall.call.state !== "ringing") {
              self.api("POST", "/api/calls/" + encodeURIComponent(inCall.call.call_id) + "/transfer", { to: u.extension, mode: "blind" })
                .catch(function (err) { self.toast(t.error + ": " + err.message, "bad"); });
            } else self.dial(u.extension, true);
          } }, icon(inCall ? "transfer" : "phone")) : null));
      });
    }

    renderDialer(msg) {
      if (this.dialerList.querySelector(".empty")) this.dialerList.textContent = "";
      this.dialerList.insertBefore(el("li", {}, el("div", { class: "grow" },
        el("div", { class: "name", text: msg.campaign || msg.type }), el("div", { class: "sub", text: msg.status || msg.type }))), this.dialerList.firstChild);
    }
  }

  customElements.define("centralita-phone", CentralitaPhone);
  function mount() {
    if (!document.querySelector("centralita-phone")) document.body.appendChild(document.createElement("centralita-phone"));
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
