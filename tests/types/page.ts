// The page API as the README shows it; each `@ts-expect-error` is misuse the
// declarations must reject (the compiler fails if one is accepted).
import init, { Askwell, type AskwellConfig } from "askwell";

await init();
const config: AskwellConfig = {
  server: "https://push.example.com",
  prompts: [
    {
      id: "reply-alerts",
      message: "Want to know when {entity.name} replies?",
      accept: "Yes",
      decline: "Not now",
      topic: "thread:{entity.id}",
    },
    {
      id: "deals",
      placement: "inline",
      anchor: "#cart",
      variants: [
        { id: "a", message: "Get a note when prices drop?" },
        { id: "b", weight: 2, message: "Price drops, straight to you?" },
      ],
      holdout: 0.1,
    },
    { id: "upgrade", kind: "action", url: "/pricing", message: "See what Pro adds?", coolOffDays: [7, 30] },
  ],
  rules: [
    { prompt: "reply-alerts", on: "message_sent" },
    { prompt: "deals", when: { all: [{ action: "cart_viewed", count: 2, withinMinutes: 10 }, { path: "/shop/*" }] } },
    { prompt: "upgrade", when: { any: [{ trait: "plan", equals: "free" }, { all: [{ trait: "seats", gte: 5 }, { not: { topic: "thread:*" } }] }, { not: { permission: "granted" } }] } },
  ],
  policy: { coolOffDays: [3, 7, 30], perWeek: 3, copyChecks: "warn" },
  user: { id: "u-17", traits: { plan: "free", seats: 3, beta: true } },
};
const askwell = await Askwell.start(config);
await Askwell.start(config, { now: () => Date.now() });

const shown: boolean = askwell.track("message_sent", { entity: { id: "bill", name: "Bill", avatar: "/img/bill.png" } });
askwell.track("cart_viewed");
askwell.on("shown", (detail) => console.log(detail.prompt, detail.variant, detail.entity?.name, shown));
askwell.on("permission", (detail) => console.log(detail.state.toUpperCase()));
askwell.on("error", (detail) => console.log(detail.code, detail.message));
const existed: boolean = await askwell.unsubscribe();
await askwell.removeTopic("thread:bill");
askwell.convert("replied");
console.log(askwell.anonymousId, existed);

// Consent, telemetry, the status copy after Yes, debug mode (README, *Consent and privacy*).
const private_: AskwellConfig = {
  ...config,
  server: "",
  consent: "required",
  telemetry: { send: "necessary", necessary: ["prompt_accepted", "conversion"], globalPrivacyControl: "honour" },
  messages: { subscribing: "One moment…", failed: "That did not work.", close: "Close" },
  debug: true,
};
const careful = await Askwell.start(private_);
careful.consent(true);
careful.on("skipped", (detail) => console.log(detail.prompt, detail.reason.length));
await Askwell.start({ ...config, telemetry: false });
// Forwarded actions for a signed-in user (README, *Tell Askwell about your users*).
await Askwell.start({
  ...config,
  user: { id: "u1", proof: "ab12" },
  forward: ["added_to_cart", "checkout_started"],
  telemetry: { necessary: ["action", "traits"] },
});
// A signed-in user's traits, sent once per change (`null` deletes one on the server).
const bound: boolean = await askwell.identify("u1", { proof: "ab12", traits: { plan: "pro", seats: 3, trial: null } });
console.log(bound);
askwell.destroy();

// @ts-expect-error: `prompts` is required
await Askwell.start({ rules: [] });
// @ts-expect-error: one test per trait condition (two bounds are an `all`)
await Askwell.start({ prompts: [{ id: "x", message: "m" }], rules: [{ prompt: "x", when: { all: [{ action: "a" }, { trait: "seats", gte: 1, lte: 9 }] } }] });
// @ts-expect-error: a misspelt field
await Askwell.start({ prompts: [{ id: "x", mesage: "typo" }] });
// @ts-expect-error: no such placement
await Askwell.start({ prompts: [{ id: "x", message: "m", placement: "popup" }] });
// @ts-expect-error: entity ids are strings
askwell.track("message_sent", { entity: { id: 42 } });
// @ts-expect-error: no such outcome
askwell.on("clicked", () => {});
// @ts-expect-error: telemetry.necessary takes event types the page sends
await Askwell.start({ ...config, telemetry: { necessary: ["subscribed"] } });
// @ts-expect-error: forward lists action names
await Askwell.start({ ...config, forward: "added_to_cart" });
// @ts-expect-error: traits are flat (no objects or arrays)
void askwell.identify("u1", { proof: "ab12", traits: { tags: ["a"] } });
// @ts-expect-error: consent is "required" or "not-required"
await Askwell.start({ ...config, consent: true });
// @ts-expect-error: an error detail has no prompt
askwell.on("error", (detail) => detail.prompt);
