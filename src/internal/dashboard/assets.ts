/**
 * The dashboard's page, script and stylesheet, embedded as strings so the package needs no asset files and the
 * page works offline (nothing is loaded from anywhere but the router itself). Plain DOM code, no framework.
 *
 * The script is kept free of backticks and `${` so it can live in a raw template literal unchanged.
 */

const escapeHtml = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** What the page's script reads from the page: where to POST calls, and the title. */
export interface PageConfig {
  readonly callPrefix: string
  readonly title: string
}

/**
 * The page. `base` is the router's mount path with a trailing slash (`/ui/`): every relative URL of the page
 * (script, stylesheet, API) resolves against it, whether the page was asked for as `/ui` or `/ui/`.
 */
export const page = (base: string, config: PageConfig): string => {
  // `<` escaped so the JSON cannot close the script element it sits in.
  const json = JSON.stringify(config).replace(/</g, "\\u003c")
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<base href="${escapeHtml(base)}">
<title>${escapeHtml(config.title)} dashboard</title>
<link rel="stylesheet" href="app.css">
<script id="micro-config" type="application/json">${json}</script>
<script src="app.js" defer></script>
</head>
<body>
<header>
  <h1>${escapeHtml(config.title)}</h1>
  <span id="live" class="badge" data-state="connecting">connecting</span>
</header>
<main>
  <section id="services-pane">
    <h2>Services</h2>
    <div id="services"><p class="muted">Loading…</p></div>
    <h2>Registry changes</h2>
    <ol id="changes" class="log"></ol>
  </section>
  <section id="detail-pane">
    <div id="detail"><p class="muted">Select a service to see its nodes, endpoints and schemas.</p></div>
  </section>
</main>
<section id="tail-pane">
  <h2>Topic tail</h2>
  <form id="tail-form">
    <input id="tail-topic" name="topic" placeholder="topic, e.g. orders.created" autocomplete="off" required>
    <button type="submit" id="tail-start">Tail</button>
    <button type="button" id="tail-stop" disabled>Stop</button>
    <span id="tail-status" class="muted"></span>
  </form>
  <ol id="tail" class="log"></ol>
</section>
</body>
</html>
`
}

/** The stylesheet. */
export const stylesheet = `
:root { --fg: #1d2330; --muted: #6b7385; --line: #d9dde5; --bg: #f6f7f9; --ok: #17803d; --bad: #b42318; --accent: #2456c8; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 12px; padding: 10px 18px; background: #fff; border-bottom: 1px solid var(--line); }
h1 { font-size: 18px; margin: 0; }
h2 { font-size: 15px; margin: 14px 0 8px; }
h3 { font-size: 14px; margin: 12px 0 6px; }
main { display: grid; grid-template-columns: minmax(260px, 1fr) 2fr; gap: 16px; padding: 0 18px; }
#tail-pane { padding: 0 18px 18px; }
.muted { color: var(--muted); }
.badge { font-size: 12px; padding: 1px 8px; border-radius: 10px; background: var(--line); }
.badge[data-state="live"] { background: #d8f0df; color: var(--ok); }
.badge[data-state="down"] { background: #f9dcd9; color: var(--bad); }
.service { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; margin-bottom: 8px; cursor: pointer; }
.service[aria-selected="true"] { border-color: var(--accent); box-shadow: 0 0 0 1px var(--accent); }
.service .name { font-weight: 600; }
.service .kind { margin-left: 6px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid var(--line); vertical-align: top; font-size: 13px; }
th { color: var(--muted); font-weight: 500; }
code, pre, textarea, input { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; }
pre { background: #fff; border: 1px solid var(--line); border-radius: 4px; padding: 6px 8px; overflow: auto; max-height: 320px; margin: 4px 0; }
.endpoint { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; margin-bottom: 10px; }
.endpoint .title { font-weight: 600; }
.shape { margin-left: 6px; }
form.call label { display: block; margin: 4px 0; }
form.call label span { display: inline-block; min-width: 120px; color: var(--muted); }
form.call input[type="text"], form.call select { min-width: 220px; padding: 3px 5px; }
textarea { width: 100%; min-height: 60px; padding: 4px 6px; }
button { padding: 4px 12px; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 4px; cursor: pointer; }
button[disabled] { opacity: 0.5; cursor: default; }
button.secondary { background: #fff; color: var(--accent); }
.result.ok { border-color: var(--ok); }
.result.error { border-color: var(--bad); color: var(--bad); }
.status-line { font-size: 12px; margin-top: 6px; }
.status-line.ok { color: var(--ok); }
.status-line.error { color: var(--bad); }
.log { list-style: none; padding: 0; margin: 0; max-height: 260px; overflow: auto; }
.log li { background: #fff; border: 1px solid var(--line); border-radius: 4px; padding: 4px 8px; margin-bottom: 4px; font-size: 12.5px; }
#tail-form input { min-width: 280px; padding: 4px 6px; }
.serving { color: var(--ok); }
.unhealthy { color: var(--bad); }
`

/** The page's script. */
export const script = String.raw`
"use strict";
(function () {
  var config = JSON.parse(document.getElementById("micro-config").textContent);
  var state = { services: [], selected: null, registry: null, tail: null, lastSeq: 0, refreshTimer: null };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      for (var key in attrs) {
        if (attrs[key] === undefined || attrs[key] === null) continue;
        if (key === "text") node.textContent = attrs[key];
        else if (key === "className") node.className = attrs[key];
        else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), attrs[key]);
        else node.setAttribute(key, attrs[key]);
      }
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }
  function pretty(value) { return JSON.stringify(value, null, 2); }
  function entries(record) { return Object.keys(record || {}).map(function (k) { return k + "=" + record[k]; }).join(" "); }
  function key(service) { return service.name + "\u0000" + service.version; }
  function getJson(path) {
    return fetch(path, { headers: { accept: "application/json" } }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, status: response.status, body: body }; });
    });
  }

  // ----- services, live from the registry -----
  var live = document.getElementById("live");
  function setLive(text, s) { live.textContent = text; live.setAttribute("data-state", s); }

  function logChange(text) {
    var list = document.getElementById("changes");
    list.insertBefore(el("li", { text: new Date().toLocaleTimeString() + "  " + text }), list.firstChild);
    while (list.children.length > 50) list.removeChild(list.lastChild);
  }

  function applyChange(change) {
    var k = key(change.service);
    var index = state.services.findIndex(function (s) { return key(s) === k; });
    var before = index === -1 ? null : state.services[index];
    if (change.type === "delete") {
      if (index !== -1) state.services.splice(index, 1);
      logChange("gone: " + change.service.name + " " + change.service.version);
    } else {
      if (index === -1) state.services.push(change.service);
      else state.services[index] = change.service;
      var was = before ? before.nodes.map(function (n) { return n.id; }) : [];
      var now = change.service.nodes.map(function (n) { return n.id; });
      var added = now.filter(function (id) { return was.indexOf(id) === -1; });
      var removed = was.filter(function (id) { return now.indexOf(id) === -1; });
      var text = change.service.name + " " + change.service.version + ":";
      if (added.length) text += " node " + added.join(", ") + " up";
      if (removed.length) text += " node " + removed.join(", ") + " gone";
      if (!added.length && !removed.length) text += " updated";
      logChange(text);
    }
    state.services.sort(function (a, b) { return a.name.localeCompare(b.name) || a.version.localeCompare(b.version); });
    renderServices();
    if (state.selected === change.service.name) refreshNodes();
  }

  function grouped() {
    var byName = {};
    state.services.forEach(function (s) { (byName[s.name] = byName[s.name] || []).push(s); });
    return Object.keys(byName).sort().map(function (name) { return { name: name, versions: byName[name] }; });
  }

  function renderServices() {
    var container = document.getElementById("services");
    container.textContent = "";
    var groups = grouped();
    if (groups.length === 0) container.appendChild(el("p", { className: "muted", text: "No services registered." }));
    groups.forEach(function (group) {
      var kind = group.versions[0].kind;
      var rows = [];
      group.versions.forEach(function (version) {
        version.nodes.forEach(function (node) {
          rows.push(el("tr", { "data-node": node.id }, [
            el("td", { text: node.id }), el("td", { text: node.address }),
            el("td", { text: version.version }), el("td", { text: entries(node.metadata) })
          ]));
        });
      });
      var count = rows.length;
      var box = el("div", {
        className: "service", "data-service": group.name, role: "button", tabindex: "0",
        "aria-selected": String(state.selected === group.name),
        onclick: function () { select(group.name); },
        onkeydown: function (e) { if (e.key === "Enter") select(group.name); }
      }, [
        el("span", { className: "name", text: group.name }),
        el("span", { className: "kind badge", text: kind }),
        el("span", { className: "muted", text: "  " + count + (count === 1 ? " node" : " nodes") }),
        el("table", { className: "nodes" }, [
          el("thead", null, [el("tr", null, [el("th", { text: "node" }), el("th", { text: "address" }), el("th", { text: "version" }), el("th", { text: "metadata" })])]),
          el("tbody", null, rows)
        ])
      ]);
      container.appendChild(box);
    });
  }

  function connectRegistry() {
    var source = new EventSource("api/registry");
    state.registry = source;
    source.addEventListener("open", function () { setLive("live", "live"); });
    source.addEventListener("services", function (event) {
      state.services = JSON.parse(event.data);
      renderServices();
    });
    source.addEventListener("change", function (event) { applyChange(JSON.parse(event.data)); });
    source.addEventListener("error", function (event) {
      if (event.data) logChange("registry error: " + JSON.parse(event.data).detail);
      setLive(source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting", "down");
    });
  }

  // ----- one service: nodes (health, stats), endpoints (schemas, call forms) -----
  function select(name) {
    state.selected = name;
    renderServices();
    var detail = document.getElementById("detail");
    detail.textContent = "";
    detail.appendChild(el("h2", { text: name }));
    detail.appendChild(el("div", { id: "nodes-detail" }, [el("p", { className: "muted", text: "Asking the nodes…" })]));
    detail.appendChild(el("div", { id: "endpoints" }, [el("p", { className: "muted", text: "Describing…" })]));
    refreshNodes();
    var service = state.services.find(function (s) { return s.name === name; });
    if (service && service.kind === "subscription") {
      document.getElementById("endpoints").textContent = "A broker subscription: tail its topic below.";
      document.getElementById("tail-topic").value = name;
      return;
    }
    getJson("api/services/" + encodeURIComponent(name) + "/describe").then(function (result) {
      if (state.selected !== name) return;
      renderEndpoints(name, result);
    }, function (error) { showFailure("endpoints", String(error)); });
    if (state.refreshTimer) clearInterval(state.refreshTimer);
    state.refreshTimer = setInterval(function () { if (state.selected === name) refreshNodes(); }, 5000);
  }

  function showFailure(id, text) {
    var node = document.getElementById(id);
    if (!node) return;
    node.textContent = "";
    node.appendChild(el("pre", { className: "result error", text: text }));
  }

  function refreshNodes() {
    var name = state.selected;
    if (!name) return;
    var service = state.services.find(function (s) { return s.name === name; });
    if (service && service.kind === "subscription") {
      var box = document.getElementById("nodes-detail");
      if (box) { box.textContent = ""; box.appendChild(el("p", { className: "muted", text: "Subscribers answer no RPC (no health or stats)." })); }
      return;
    }
    var base = "api/services/" + encodeURIComponent(name);
    Promise.all([getJson(base + "/health"), getJson(base + "/stats")]).then(function (results) {
      if (state.selected !== name) return;
      renderNodes(results[0], results[1]);
    }, function (error) { showFailure("nodes-detail", String(error)); });
  }

  function renderNodes(health, stats) {
    var box = document.getElementById("nodes-detail");
    if (!box) return;
    box.textContent = "";
    if (!health.ok) { box.appendChild(el("pre", { className: "result error", text: pretty(health.body) })); return; }
    var statsById = {};
    if (stats.ok) stats.body.forEach(function (s) { statsById[s.id] = s; });
    var rows = health.body.map(function (h) {
      var s = statsById[h.id];
      var endpoints = s && s.ok ? s.value.endpoints : [];
      var inFlight = endpoints.reduce(function (n, e) { return n + e.inFlight; }, 0);
      var calls = endpoints.map(function (e) {
        return e.endpoint + " " + e.started + "/" + e.succeeded + "/" + e.failed + (e.inFlight ? " (" + e.inFlight + " in flight)" : "");
      }).join("; ");
      return el("tr", { "data-node": h.id }, [
        el("td", { text: h.id }), el("td", { text: h.address }), el("td", { text: h.version }),
        el("td", { className: h.ok && h.value.status === "serving" ? "serving" : "unhealthy",
          text: h.ok ? h.value.status : h.error._tag + ": " + h.error.detail }),
        el("td", { text: h.ok ? Math.round(h.value.uptimeMillis / 1000) + " s" : "" }),
        el("td", { text: s && s.ok ? String(inFlight) : "" }),
        el("td", { text: calls })
      ]);
    });
    box.appendChild(el("h3", { text: "Nodes" }));
    box.appendChild(el("table", { className: "health" }, [
      el("thead", null, [el("tr", null, ["node", "address", "version", "health", "uptime", "in flight", "calls started/ok/failed"].map(function (t) { return el("th", { text: t }); }))]),
      el("tbody", null, rows)
    ]));
  }

  function renderEndpoints(service, result) {
    var box = document.getElementById("endpoints");
    box.textContent = "";
    if (!result.ok) { box.appendChild(el("pre", { className: "result error", text: pretty(result.body) })); return; }
    box.appendChild(el("h3", { text: "Endpoints" }));
    result.body.endpoints.forEach(function (endpoint) { box.appendChild(renderEndpoint(service, endpoint)); });
  }

  function schemaBlock(title, schema) {
    return el("details", null, [el("summary", { text: title }), el("pre", { text: pretty(schema) })]);
  }

  // A "$ref" into the schema's own "$defs" (what effect's JSONSchema emits for named schemas).
  function resolve(schema, root) {
    var seen = 0;
    while (schema && typeof schema.$ref === "string" && schema.$ref.indexOf("#/$defs/") === 0 && seen++ < 16) {
      schema = ((root && root.$defs) || {})[decodeURIComponent(schema.$ref.slice(8))];
    }
    return schema;
  }
  function literals(schema) {
    if (Array.isArray(schema.enum) && schema.enum.every(function (v) { return v === null || typeof v !== "object"; })) return schema.enum;
    if (Array.isArray(schema.anyOf) && schema.anyOf.every(function (s) { return s && "const" in s; })) return schema.anyOf.map(function (s) { return s.const; });
    return null;
  }
  // The kind of input for a property: a primitive field, or null (a JSON textarea).
  function fieldKind(schema, root) {
    schema = resolve(schema, root);
    if (!schema || typeof schema !== "object") return null;
    if (literals(schema)) return "enum";
    if (schema.type === "string" || schema.type === "number" || schema.type === "integer" || schema.type === "boolean") return schema.type;
    return null;
  }

  function renderEndpoint(service, endpoint) {
    var result = el("div", { className: "call-result" });
    var children = [
      el("div", null, [
        el("span", { className: "title", text: endpoint.name }),
        el("span", { className: "shape badge", text: endpoint.shape + (endpoint.idempotent ? ", idempotent" : "") })
      ]),
      schemaBlock("request schema", endpoint.request),
      schemaBlock("response schema", endpoint.response),
      schemaBlock("error schema", endpoint.error)
    ];
    if (endpoint.shape === "unary" || endpoint.shape === "server-stream") {
      children.push(callForm(service, endpoint, result));
      children.push(result);
    } else {
      children.push(el("p", { className: "muted", text: "Client-streaming and bidirectional endpoints are called over WebSocket (see the gateway docs)." }));
    }
    return el("div", { className: "endpoint", "data-endpoint": endpoint.name }, children);
  }

  function callForm(service, endpoint, result) {
    var root = endpoint.request;
    var schema = resolve(root, root);
    var fields = [];
    var isObject = schema && schema.type === "object" && schema.properties && typeof schema.properties === "object";
    var required = (schema && schema.required) || [];
    var inputs = el("div", { className: "fields" });
    var raw = el("textarea", { name: "__json", "aria-label": "JSON payload", spellcheck: "false" });
    var rawBox = el("label", { className: "raw" }, [el("span", { text: "JSON payload" }), raw]);
    if (isObject) {
      Object.keys(schema.properties).forEach(function (name) {
        var property = schema.properties[name];
        var kind = fieldKind(property, root);
        var resolved = resolve(property, root) || {};
        var input;
        if (kind === "boolean") input = el("input", { type: "checkbox", name: name });
        else if (kind === "enum") {
          input = el("select", { name: name }, literals(resolved).map(function (v) { return el("option", { value: JSON.stringify(v), text: String(v) }); }));
        } else if (kind) input = el("input", { type: "text", name: name, inputmode: kind === "string" ? null : "decimal", autocomplete: "off" });
        else input = el("textarea", { name: name, placeholder: "JSON", spellcheck: "false" });
        fields.push({ name: name, kind: kind, input: input, required: required.indexOf(name) !== -1 });
        inputs.appendChild(el("label", null, [
          el("span", { text: name + (required.indexOf(name) !== -1 ? " *" : "") + " (" + (kind || "JSON") + ")" }), input
        ]));
      });
    }
    var useRaw = el("input", { type: "checkbox", name: "__raw" });
    function collect() {
      if (!isObject || useRaw.checked) return raw.value.trim() === "" ? (isObject ? "{}" : "null") : raw.value;
      var value = {};
      for (var i = 0; i < fields.length; i++) {
        var f = fields[i];
        if (f.kind === "boolean") { value[f.name] = f.input.checked; continue; }
        var text = f.input.value;
        if (text === "" && !f.required) continue;
        if (f.kind === "string") value[f.name] = text;
        else if (f.kind === "number" || f.kind === "integer") {
          var n = Number(text);
          // Not a number: sent as typed, so the service's own validation answers (a typed BadRequest).
          value[f.name] = text.trim() === "" || isNaN(n) ? text : n;
        } else if (f.kind === "enum") value[f.name] = JSON.parse(text);
        else {
          try { value[f.name] = JSON.parse(text); } catch (e) { throw new Error(f.name + ": not JSON (" + e.message + ")"); }
        }
      }
      return JSON.stringify(value);
    }
    function toggle() {
      if (useRaw.checked && isObject) {
        // Start the JSON from what the fields hold.
        useRaw.checked = false;
        try { raw.value = pretty(JSON.parse(collect())); } catch (e) { /* keep what is there */ }
        useRaw.checked = true;
      }
      inputs.style.display = useRaw.checked ? "none" : "";
      rawBox.style.display = useRaw.checked || !isObject ? "" : "none";
    }
    useRaw.addEventListener("change", toggle);
    var form = el("form", { className: "call", "data-service": service, "data-endpoint": endpoint.name }, [
      inputs,
      isObject ? el("label", null, [useRaw, " edit as JSON"]) : null,
      rawBox,
      el("button", { type: "submit", text: "Call " + endpoint.name })
    ]);
    toggle();
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body;
      try { body = collect(); } catch (e) { show(result, "error", "not sent", e.message); return; }
      call(service, endpoint, body, result);
    });
    return form;
  }

  function show(box, kind, statusText, text) {
    box.textContent = "";
    box.setAttribute("data-state", kind);
    box.appendChild(el("div", { className: "status-line " + kind, text: statusText }));
    box.appendChild(el("pre", { className: "result " + kind, text: text }));
  }

  function call(service, endpoint, body, box) {
    var url = config.callPrefix + "/" + encodeURIComponent(service) + "/" + encodeURIComponent(endpoint.name);
    var accept = endpoint.shape === "server-stream" ? "application/x-ndjson" : "application/json";
    show(box, "pending", "calling " + url + "…", "");
    var started = performance.now();
    fetch(new URL(url, location.origin), { method: "POST", headers: { "content-type": "application/json", accept: accept }, body: body })
      .then(function (response) {
        return response.text().then(function (text) {
          var millis = Math.round(performance.now() - started);
          var shown = text;
          var parsed;
          try { parsed = JSON.parse(text); shown = pretty(parsed); } catch (e) { /* NDJSON or text: shown as is */ }
          var line = response.status + " " + response.statusText + " in " + millis + " ms";
          if (!response.ok && parsed && typeof parsed === "object" && parsed._tag) line += " — typed error " + parsed._tag;
          show(box, response.ok ? "ok" : "error", line, shown);
        });
      }, function (error) { show(box, "error", "request failed", String(error)); });
  }

  // ----- topic tail -----
  var tailStatus = document.getElementById("tail-status");
  function stopTail() {
    if (state.tail) state.tail.close();
    state.tail = null;
    document.getElementById("tail-stop").disabled = true;
    document.getElementById("tail-start").disabled = false;
  }
  function startTail(topic) {
    stopTail();
    var list = document.getElementById("tail");
    list.textContent = "";
    state.lastSeq = 0;
    tailStatus.textContent = "subscribing to " + topic + "…";
    var source = new EventSource("api/topics/" + encodeURIComponent(topic));
    state.tail = source;
    document.getElementById("tail-stop").disabled = false;
    document.getElementById("tail-start").disabled = true;
    source.addEventListener("subscribed", function (event) {
      var info = JSON.parse(event.data);
      tailStatus.textContent = "tailing " + info.topic + " (own queue group " + info.queue + ")";
    });
    source.addEventListener("message", function (event) {
      var m = JSON.parse(event.data);
      var gap = m.seq - state.lastSeq - 1;
      state.lastSeq = m.seq;
      var head = new Date(m.receivedAt).toLocaleTimeString() + "  #" + m.seq + "  " + m.contentType + "  " + m.size + " B" +
        (m.truncated ? " (cut)" : "") + (gap > 0 ? "  [" + gap + " dropped]" : "") + "  " + entries(m.headers);
      var item = el("li", { "data-seq": String(m.seq) }, [el("div", { className: "muted", text: head }),
        el("code", { text: m.encoding === "base64" ? "base64: " + m.body : m.body })]);
      list.insertBefore(item, list.firstChild);
      while (list.children.length > 200) list.removeChild(list.lastChild);
    });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) {
        tailStatus.textContent = "tail of " + topic + " refused or ended (see the API: api/topics/" + topic + ")";
        stopTail();
      } else tailStatus.textContent = "reconnecting to " + topic + "…";
    });
  }
  document.getElementById("tail-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var topic = document.getElementById("tail-topic").value.trim();
    if (topic) startTail(topic);
  });
  document.getElementById("tail-stop").addEventListener("click", stopTail);

  connectRegistry();
})();
`
