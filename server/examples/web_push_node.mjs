// The side-by-side number for delivery_bench: how many push requests
// Node's web-push (pinned in package.json) builds per second on one core —
// RFC 8291 encryption and its VAPID signature, as `sendNotification` does
// before it sends — for N subscriptions and the same 196-byte payload.
// Prints one line: `web-push <version>: <msgs/s>`.
//
// node server/examples/web_push_node.mjs [N]
import { createECDH, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import webpush from "web-push";

const require = createRequire(import.meta.url);
const { version } = require("web-push/package.json");
const n = Number(process.argv[2] ?? 10000);
const payload = `{"askwell":1,"title":"Bill replied","body":"${"x".repeat(150)}"}`;
const vapid = webpush.generateVAPIDKeys();
const subscribers = Array.from({ length: 100 }, () => {
  const ecdh = createECDH("prime256v1");
  ecdh.generateKeys();
  return { p256dh: ecdh.getPublicKey("base64url"), auth: randomBytes(16).toString("base64url") };
});
const options = { TTL: 3600, vapidDetails: { subject: "mailto:bench@example.com", publicKey: vapid.publicKey, privateKey: vapid.privateKey } };

const started = process.hrtime.bigint();
for (let i = 0; i < n; i++) {
  const subscription = { endpoint: `https://push.example.net/push/${i}`, keys: subscribers[i % 100] };
  webpush.generateRequestDetails(subscription, payload, options);
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(`web-push ${version}: ${Math.round(n / seconds)}`);
