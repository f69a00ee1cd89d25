// The demo page's code: everything it does goes through the client module, as a front end's would.
import { Client } from "../client/rtbus.js";

const $ = (id) => document.getElementById(id);
const client = new Client();
let sub = null;

// window.demo lets a person (or a test) look inside from the console.
const demo = (window.demo = { client, sub: null, messages: [], errors: [] });

function log(text, cls) {
  const line = document.createElement("div");
  line.textContent = new Date().toLocaleTimeString() + " " + text;
  if (cls) line.className = cls;
  const box = $("log");
  box.append(line);
  while (box.childElementCount > 500) box.firstElementChild.remove();
  box.scrollTop = box.scrollHeight;
}

function fail(e) {
  demo.errors.push(String(e.message || e));
  log("error: " + (e.message || e), "error");
}

function loggedIn(name) {
  $("who").textContent = name ? "logged in as " + name : "";
  for (const id of ["connect", "insert", "logout"]) $(id).disabled = !name;
}

$("signup").onclick = async () => {
  try {
    const username = $("username").value, password = $("password").value;
    await client.signUp({ username, password, tenant_id: $("tenant").value });
    await client.logIn(username, password);
    log("signed up " + username);
    loggedIn(username);
  } catch (e) {
    fail(e);
  }
};

$("login").onclick = async () => {
  try {
    await client.logIn($("username").value, $("password").value);
    const me = await client.verify();
    log("logged in " + me.username + " (tenant " + me.tenant_id + ")");
    loggedIn(me.username);
  } catch (e) {
    fail(e);
  }
};

$("logout").onclick = async () => {
  try {
    await client.logOut(); // the open stream gets session_killed and ends
    log("logged out");
    loggedIn("");
  } catch (e) {
    fail(e);
  }
};

$("connect").onclick = () => {
  sub?.close();
  const events = $("events").value.trim();
  sub = demo.sub = client.subscribe({ transport: $("transport").value, events: events || undefined });
  sub.onStatus((s) => {
    let text = s.status + (s.transport ? " (" + s.transport + ")" : "");
    if (s.delay != null) text += ", retry in " + s.delay + " ms";
    $("status").textContent = text;
    log("stream " + text + (s.error ? ": " + s.error.message : ""));
  });
  sub.on("*", (m) => {
    demo.messages.push(m);
    if (demo.messages.length > 10000) demo.messages.shift();
    log(JSON.stringify(m));
  });
  sub.onState(render);
  sub.onError(fail);
  $("disconnect").disabled = false;
};

$("disconnect").onclick = () => {
  sub?.close();
  $("disconnect").disabled = true;
};

$("collection").oninput = () => sub && render(sub.state);

function render(records) {
  const collection = $("collection").value;
  const rows = records
    .filter((r) => r.collection_id === collection)
    .map((r) => {
      const tr = document.createElement("tr");
      for (const [text, cls] of [
        [r.event],
        [new Date(r.timestamp * 1000).toLocaleString()],
        [JSON.stringify(r.data, null, 1), "data"],
      ]) {
        const td = document.createElement("td");
        td.textContent = text; // never innerHTML: the data is anyone's
        if (cls) td.className = cls;
        tr.append(td);
      }
      return tr;
    });
  $("state").replaceChildren(...rows);
}

$("insert").onclick = async () => {
  let data;
  try {
    data = JSON.parse($("data").value);
  } catch (e) {
    return fail(new Error("data is not JSON: " + e.message));
  }
  const at = $("at").value;
  $("inserted").textContent = "inserting…";
  try {
    const rec = await client.insert({
      event: $("event").value,
      collection_id: $("collection").value,
      data,
      timestamp: at ? new Date(at) : undefined,
    });
    const out = $("inserted");
    out.replaceChildren();
    if (rec.published) {
      out.textContent = "published " + rec.id;
      return;
    }
    out.textContent = "scheduled " + rec.id + " for " + new Date(rec.timestamp * 1000).toLocaleString() + " ";
    const cancel = document.createElement("button");
    cancel.textContent = "Cancel";
    cancel.onclick = async () => {
      try {
        await client.cancel(rec.id);
        out.textContent = "cancelled " + rec.id;
      } catch (e) {
        fail(e);
      }
    };
    out.append(cancel);
  } catch (e) {
    fail(e);
  }
};
