// An honest stand-in for a push service (the real ones are on the internet):
// it accepts a push only with a valid VAPID JWT (RFC 8292, checked as
// firefox-push-service.mjs checks it) and a body the addressed device can
// decrypt with its own keys (RFC 8291 aes128gcm, decrypted here,
// independently of the server's web-push crate), as a browser would.
import { createServer } from "node:http";
import { createDecipheriv, createECDH, hkdfSync, randomBytes } from "node:crypto";
import { checkVapid } from "./firefox-push-service.mjs";

/** RFC 8291 (aes128gcm, one record) with the device's private key and auth secret. */
export function decrypt(body, device) {
  const salt = body.subarray(0, 16);
  const idLength = body[20];
  const senderKey = body.subarray(21, 21 + idLength);
  const sealed = body.subarray(21 + idLength);
  const shared = device.ecdh.computeSecret(senderKey);
  const info = Buffer.concat([Buffer.from("WebPush: info\0"), device.ecdh.getPublicKey(), senderKey]);
  const ikm = Buffer.from(hkdfSync("sha256", shared, device.authBytes, info, 32));
  const key = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: aes128gcm\0"), 16));
  const nonce = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: nonce\0"), 12));
  const decipher = createDecipheriv("aes-128-gcm", key, nonce);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  const padded = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
  const end = padded.lastIndexOf(2); // the last record's delimiter, then zero padding
  return JSON.parse(padded.subarray(0, end).toString());
}

/** A push service for `devices` (filled in later by the caller): POST
 *  /<device name> with a valid VAPID JWT and a body that device can decrypt
 *  is a 201 and a received payload; anything else a 400 (and a failed test). */
export async function startPushDouble(devices) {
  const received = [];
  const rejected = [];
  const http = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const device = devices.find((d) => req.url === `/${d.name}`);
      const problem = !device ? "unknown device" : checkVapid(req.headers.authorization ?? "", null, origin);
      if (problem) {
        rejected.push(problem);
        res.writeHead(400).end();
        return;
      }
      try {
        received.push({ device: device.name, payload: decrypt(Buffer.concat(chunks), device) });
        res.writeHead(201).end();
      } catch (error) {
        rejected.push(`cannot decrypt: ${error.message}`);
        res.writeHead(400).end();
      }
    });
  });
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${http.address().port}`;
  return { origin, received, rejected, close: () => new Promise((resolve) => http.close(resolve)) };
}

/** A device of `service` named `name`: fresh P-256 keys and auth secret, and
 *  the PushSubscription JSON a browser would post. */
export function newDevice(name, service) {
  const ecdh = createECDH("prime256v1");
  ecdh.generateKeys();
  const authBytes = randomBytes(16);
  const auth = authBytes.toString("base64url");
  const endpoint = `${service.origin}/${name}`;
  const subscription = { endpoint, keys: { p256dh: ecdh.getPublicKey().toString("base64url"), auth } };
  return { name, ecdh, authBytes, auth, endpoint, subscription };
}
