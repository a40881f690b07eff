// End to end: personal pushes on the real demo server. Two signed-in users'
// devices (bound with the app backend's proof, as `identify` binds them) get
// one notification whose copy reads `{user.first_name}` and a batch whose
// copy reads each user's own `{data.*}`; this test is their push service
// (push-double.mjs: VAPID verified, RFC 8291 decrypted with each device's
// own keys) and finds each person's own name and data in what reached them
// — and nobody else's.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { baseUrl, admin } from "./browser.mjs";
import { startPushDouble, newDevice } from "./push-double.mjs";

const RUN = Date.now().toString(36);
const TOPIC = `personal-${RUN}`;
const userProof = (user) => createHmac("sha256", process.env.ASKWELL_IDENTITY_SECRET ?? "demo-identity-secret").update(user).digest("hex");
const PEOPLE = [
  { user: `ada-${RUN}`, first_name: "Ada", item: "Red shoes" },
  { user: `bill-${RUN}`, first_name: "Bill", item: "A hat" },
];

let service;
const devices = [];

before(async () => {
  service = await startPushDouble(devices);
  for (const person of PEOPLE) {
    await admin("PUT", `/v1/users/${person.user}`, { traits: { first_name: person.first_name } });
    const device = newDevice(person.user, service);
    devices.push(device);
    const response = await fetch(`${baseUrl}/v1/subscriptions`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ subscription: device.subscription, topics: [TOPIC], user: person.user, userProof: userProof(person.user) }),
    });
    assert.equal(response.status, 201, await response.text());
  }
});
after(async () => {
  for (const person of PEOPLE) await admin("DELETE", `/v1/users/${person.user}`);
  await service?.close();
});


/** What each device decrypted for notification `id`, once all were delivered. */
async function received(id) {
  for (let i = 0; i < 150; i++) {
    const { counts } = await admin("GET", `/v1/notifications/${id}`);
    if (counts.delivered === PEOPLE.length) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.deepEqual(service.rejected, []);
  const mine = service.received.filter((r) => r.payload.delivery?.startsWith(`${id}:`));
  return Object.fromEntries(mine.map((r) => [r.device, r.payload]));
}

test("each person's device decrypts a push with their own name, and a batch with their own data", async () => {
  const named = await admin("POST", "/v1/notify", {
    to: { topic: TOPIC },
    notification: { title: "Hi {user.first_name|there}", body: "{user.first_name|Someone}, your order shipped" },
  });
  assert.equal(named.recipients, PEOPLE.length);
  const got = await received(named.id);
  for (const person of PEOPLE) {
    assert.equal(got[person.user]?.title, `Hi ${person.first_name}`, JSON.stringify(got));
    assert.equal(got[person.user]?.body, `${person.first_name}, your order shipped`);
  }

  const batch = await admin("POST", "/v1/notify", {
    batch: PEOPLE.map((p) => ({ to: { user: p.user }, data: { item: p.item } })),
    notification: { title: "{data.item} is back, {user.first_name|friend}", url: "/shop.html?item={data.item}" },
  });
  const restock = await received(batch.id);
  for (const person of PEOPLE) {
    assert.equal(restock[person.user]?.title, `${person.item} is back, ${person.first_name}`);
    assert.equal(restock[person.user]?.url, `/shop.html?item=${encodeURIComponent(person.item)}`);
  }
  const others = PEOPLE.filter((p) => JSON.stringify(restock[PEOPLE[0].user]).includes(p.first_name));
  assert.deepEqual(others.map((p) => p.user), [PEOPLE[0].user], "Ada's push names nobody else");
});
