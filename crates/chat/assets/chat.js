// The web chat page: sends a message, reads the answer's event stream, and shows text, tool
// calls, approvals and tools' questions inline; approvals and answers are posted back with the
// session's CSRF token. Everything the server sends is shown as text, never as markup.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const conversation = document.getElementById("conversation");
const composer = document.getElementById("composer");
const input = document.getElementById("message");
const sendButton = document.getElementById("send");

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function scroll() {
  conversation.scrollTop = conversation.scrollHeight;
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json", "x-csrf-token": csrf },
    body: JSON.stringify(body),
  });
  let data = {};
  try { data = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

// One answer being written: its bubble and its tool cards by call id.
function Reply() {
  this.bubble = null;
  this.cards = new Map();
}

Reply.prototype.text = function (text) {
  if (!this.bubble) {
    this.bubble = el("div", "message assistant");
    conversation.appendChild(this.bubble);
  }
  this.bubble.textContent += text;
};

Reply.prototype.handle = function (event) {
  switch (event.type) {
    case "tools": {
      const note = el("div", "tools", `${event.total} tools available here; offered: ${event.offered.join(", ") || "none"}`);
      conversation.appendChild(note);
      break;
    }
    case "text":
      this.text(event.text);
      break;
    case "tool_call": {
      this.bubble = null; // Text after a tool call starts a new bubble.
      const card = el("div", "card tool-call");
      card.dataset.tool = event.name;
      card.appendChild(el("div", "status", `Calling ${event.name}…`));
      card.appendChild(el("pre", "arguments", JSON.stringify(event.arguments, null, 2)));
      conversation.appendChild(card);
      this.cards.set(event.id, card);
      break;
    }
    case "tool_result": {
      const card = this.cards.get(event.id) || conversation.appendChild(el("div", "card tool-call"));
      card.querySelector(".status").textContent = `${event.name} ${event.is_error ? "failed" : "answered"}`;
      if (event.is_error) card.classList.add("failed");
      card.appendChild(el("pre", "result", event.text));
      break;
    }
    case "approval":
      conversation.appendChild(approvalCard(event));
      break;
    case "input":
      conversation.appendChild(inputCard(event));
      break;
    case "done":
      if (!this.bubble && event.text) this.text(event.text);
      break;
    case "error":
      conversation.appendChild(el("div", "message assistant error", event.message));
      break;
  }
  scroll();
};

function approvalCard(event) {
  const card = el("div", "card approval");
  card.dataset.proposal = event.proposal;
  card.appendChild(el("div", "status", `${event.tool} needs approval by ${event.approver} (proposal ${event.proposal})`));
  card.appendChild(el("pre", "arguments", JSON.stringify(event.arguments, null, 2)));
  const comment = el("input", "comment");
  comment.placeholder = "Comment (required to reject)";
  const approve = el("button", "approve", "Approve");
  const reject = el("button", "reject", "Reject");
  const outcome = el("div", "outcome");
  const decide = async (yes) => {
    approve.disabled = reject.disabled = true;
    try {
      const answer = await post("/chat/api/decisions", { proposal: event.proposal, approve: yes, comment: comment.value });
      outcome.textContent = `${yes ? "Approved" : "Rejected"} (${answer.state || "decided"}).`;
    } catch (e) {
      outcome.textContent = `Not decided: ${e.message}`;
      approve.disabled = reject.disabled = false;
    }
  };
  approve.type = reject.type = "button";
  approve.addEventListener("click", () => decide(true));
  reject.addEventListener("click", () => decide(false));
  card.append(comment, approve, reject, outcome);
  return card;
}

// A form for an elicitation's flat schema: strings, numbers, booleans and enums.
function inputCard(event) {
  const card = el("div", "card input");
  card.appendChild(el("div", "status", event.message));
  const form = el("form");
  const fields = [];
  const properties = (event.schema && event.schema.properties) || {};
  for (const [name, spec] of Object.entries(properties)) {
    const label = el("label", null, `${spec.title || name} `);
    let field;
    if (Array.isArray(spec.enum)) {
      field = el("select");
      for (const option of spec.enum) field.appendChild(el("option", null, String(option)));
    } else if (spec.type === "boolean") {
      field = el("input");
      field.type = "checkbox";
      field.checked = spec.default === true;
    } else {
      field = el("input");
      field.type = spec.type === "number" || spec.type === "integer" ? "number" : "text";
      if (spec.default !== undefined) field.value = spec.default;
    }
    field.name = name;
    label.appendChild(field);
    form.appendChild(label);
    fields.push([name, spec, field]);
  }
  const accept = el("button", "accept", "Submit");
  const decline = el("button", "decline", "Decline");
  accept.type = decline.type = "button";
  const outcome = el("div", "outcome");
  const send = async (action) => {
    accept.disabled = decline.disabled = true;
    const content = {};
    for (const [name, spec, field] of fields) {
      if (spec.type === "boolean") content[name] = field.checked;
      else if (spec.type === "number") content[name] = Number(field.value);
      else if (spec.type === "integer") content[name] = parseInt(field.value, 10);
      else content[name] = field.value;
    }
    try {
      await post("/chat/api/answers", { key: event.key, action, content });
      outcome.textContent = action === "accept" ? "Sent." : "Declined.";
    } catch (e) {
      outcome.textContent = `Not sent: ${e.message}`;
    }
  };
  accept.addEventListener("click", () => send("accept"));
  decline.addEventListener("click", () => send("decline"));
  form.append(accept, decline);
  card.append(form, outcome);
  return card;
}

async function ask(text) {
  conversation.appendChild(el("div", "message user", text));
  scroll();
  sendButton.disabled = true;
  const reply = new Reply();
  try {
    const response = await fetch("/chat/api/messages", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify({ text }),
    });
    if (!response.ok) {
      let message = response.statusText;
      try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
      reply.handle({ type: "error", message });
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        for (const line of block.split("\n")) {
          if (line.startsWith("data: ")) reply.handle(JSON.parse(line.slice(6)));
        }
      }
    }
  } catch (e) {
    reply.handle({ type: "error", message: `The answer broke off: ${e.message}` });
  } finally {
    sendButton.disabled = false;
    input.focus();
  }
}

composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  ask(text);
});

input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    composer.requestSubmit();
  }
});

document.getElementById("reset").addEventListener("click", async () => {
  try {
    await post("/chat/api/reset", {});
    conversation.textContent = "";
  } catch (e) {
    conversation.appendChild(el("div", "message assistant error", e.message));
  }
});
