// One Askwell configuration for the whole demo site (chat, shop, streaming).
// Every page imports this module; it starts Askwell once and shows outcomes.
import init, { Askwell } from "/pkg/askwell.js";

export const config = {
  // askwell-server serves this demo, so it is on the same origin ("").
  server: "",
  // Demo settings: the tour shows four prompts (chat, restock, deals,
  // episodes) in a few minutes, which the defaults would hold back
  // (perSession: 1, perWeek: 3, minGapSeconds: 30). A real app keeps the
  // defaults: one ask per visit, spaced out, is what keeps asking from
  // feeling like nagging. Cool-offs after "Not now" stay as they are.
  policy: { perSession: 4, perWeek: 10, minGapSeconds: 0 },
  // Logs each held-back prompt and emits askwell:skipped, which the status
  // line shows, so a prompt that does not appear says why. Off in production.
  debug: true,
  // Actions the server may see, for a signed-in user only (name, time and
  // the entity id as key; nothing else leaves the device): the journeys in
  // www/journeys.json follow them.
  forward: ["added_to_cart", "purchased", "episode_started", "episode_finished"],
  prompts: [
    {
      id: "reply-alerts",
      // An experiment: which wording gets more people to opt in? Compare the
      // variants on /dashboard.html. Half the visitors see b, not the
      // README's "Want to know when … replies?" (that is variant a).
      variants: [
        { id: "a", message: "Want to know when {entity.name} replies?" },
        { id: "b", message: "Get a notification when {entity.name} writes back?" },
      ],
      accept: "Yes, notify me",
      decline: "Not now",
      topic: "thread:{entity.id}",
      // What the preference centre (<askwell-preferences>) calls the thread.
      topicLabel: "Replies from {entity.name}",
      help: "unblock-help",
    },
    {
      id: "restock-alerts",
      placement: "inline",
      anchor: "#restock",
      message: "Get a notification when {entity.name} is back in stock?",
      accept: "Notify me",
      decline: "No thanks",
      topic: "restock:{entity.id}",
      topicLabel: "{entity.name} back in stock",
    },
    {
      id: "deals-email",
      kind: "action",
      placement: "modal",
      url: "/shop.html#newsletter",
      message: "You've looked at a few products. Want our weekly deals by email?",
      accept: "Sign me up",
      decline: "Not now",
    },
    {
      id: "new-episodes",
      variants: [
        { id: "a", message: "New episodes of {entity.name} are coming. Get notified?", accept: "Notify me" },
        { id: "b", message: "Never miss {entity.name}: a notification when it airs?", accept: "Yes please" },
      ],
      topic: "show:{entity.id}",
      topicLabel: "New episodes of {entity.name}",
      help: "unblock-help",
    },
    {
      id: "unblock-help",
      kind: "help",
      message: "Notifications are blocked. Use the lock icon in the address bar to allow them.",
      accept: "Got it",
      decline: "Close",
    },
  ],
  rules: [
    { prompt: "reply-alerts", when: { action: "message_sent" } },
    { prompt: "restock-alerts", on: "restock_interest" },
    { prompt: "deals-email", when: { all: [{ action: "product_viewed", count: 3, withinMinutes: 10 }, { path: "/shop*" }] } },
    { prompt: "new-episodes", when: { action: "episode_finished", milestone: 2 } },
  ],
};

// The app's own service worker (module), which imports Askwell's shim.
if ("serviceWorker" in navigator) {
  await navigator.serviceWorker.register("/sw.js", { type: "module" }).catch((error) => console.warn("service worker:", error));
}

await init();
export const askwell = await Askwell.start(config);
// Exposed for the end-to-end tests and for trying things in the console.
window.askwell = askwell;

const status = document.getElementById("status");
for (const name of ["shown", "accepted", "dismissed", "permission", "subscribed", "error"]) {
  document.addEventListener(`askwell:${name}`, (event) => {
    const d = event.detail;
    const about = d.prompt ? `prompt "${d.prompt}" (variant ${d.variant}) after "${d.trigger}"` : d.message;
    const state = d.state ? ` → ${d.state}` : "";
    if (status) status.textContent = `askwell:${name} — ${about}${state}`;
  });
}
// Debug mode (above): why a prompt was not shown, e.g. "held back: cooling-off".
document.addEventListener("askwell:skipped", (event) => {
  const { prompt, trigger, reason } = event.detail;
  if (status) status.textContent = `held back: ${reason} — prompt "${prompt}" after "${trigger}"`;
});

// The demo's sign-in. A real app's backend signs its user's id with
// ASKWELL_IDENTITY_SECRET (lowercase hex HMAC-SHA256) and hands the page the
// proof after its own login; the page never holds the secret. The demo has
// no backend of its own, so the proof of its one visitor, "demo-shopper", is
// written here, made with the demo's public secret ("demo-identity-secret",
// xtask/src/demo.rs). Signed in, the forwarded actions (config.forward)
// reach the server and the journeys of www/journeys.json follow them.
const DEMO_USER = "demo-shopper";
const DEMO_PROOF = "a1734534c1171fc35458c43dae21cf30dc558ed8abe59c82911159153928cc21";
for (const button of document.querySelectorAll("[data-demo-sign-in]")) {
  button.addEventListener("click", async () => {
    const outcome = await askwell.identify(DEMO_USER, { proof: DEMO_PROOF }).then(() => "", String);
    if (status) {
      status.textContent = outcome
        ? `sign-in refused: ${outcome}`
        : `signed in as ${DEMO_USER}: cart and episode actions now reach the server's journeys`;
    }
    button.disabled = !outcome;
  });
}
document.documentElement.dataset.askwellReady = "true";
