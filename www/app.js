// The chat demo: a page that uses Askwell the way an app would.
import init, { Askwell } from "/pkg/askwell.js";

const bill = { id: "user:bill", name: "Bill", avatar: "/img/bill.svg" };

await init();
const askwell = await Askwell.start({
  prompts: [
    {
      id: "reply-alerts",
      message: "Want to know when {entity.name} replies?",
      accept: "Yes, notify me",
      decline: "Not now",
    },
  ],
  rules: [{ prompt: "reply-alerts", on: "message_sent" }],
});
// Exposed for the end-to-end tests and for trying things in the console.
window.askwell = askwell;

const status = document.getElementById("status");
for (const name of ["shown", "accepted", "dismissed"]) {
  document.addEventListener(`askwell:${name}`, (event) => {
    status.textContent = `askwell:${name} — prompt "${event.detail.prompt}" after "${event.detail.trigger}"`;
  });
}

document.getElementById("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = event.target.elements.message;
  const item = document.createElement("li");
  item.className = "me";
  item.textContent = input.value;
  document.getElementById("messages").append(item);
  input.value = "";
  askwell.track("message_sent", { entity: bill, topic: "thread:bill" });
});

document.documentElement.dataset.askwellReady = "true";
