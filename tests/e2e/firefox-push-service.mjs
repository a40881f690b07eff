// A test-only push service for Firefox, so real Web Push runs offline:
//
// - a WebSocket server speaking Firefox's push protocol (see Firefox's
//   PushServiceWebSocket: hello / register / unregister / notification / ack),
//   which Firefox uses when `dom.push.serverURL` points at it;
// - an RFC 8030 HTTP endpoint per channel that verifies the sender's VAPID JWT
//   (RFC 8292: ES256 signature, `aud` = this origin with its port, `exp` within
//   24 h, `k` = the key the browser registered) and relays the encrypted body
//   unchanged, so Firefox itself decrypts it (RFC 8291).
import { createServer } from "node:http";
import { createPublicKey, randomUUID, verify } from "node:crypto";
import { WebSocketServer } from "ws";

const b64url = (buffer) => Buffer.from(buffer).toString("base64url");
const fromB64url = (text) => Buffer.from(text.replace(/=+$/, ""), "base64url");

export async function startPushService() {
  const channels = new Map(); // channelID -> { socket, key: Buffer }
  const log = { received: [], rejected: [], acks: [], registers: [] };
  // Set by forgetBrowsers(): the next hello gets a new UAID, which makes
  // Firefox drop its registrations and fire pushsubscriptionchange.
  let forget = false;
  // Set by refuseRegistrations(true): registrations fail, as with a push
  // service that is down or overloaded.
  let refuse = false;
  const http = createServer((req, res) => receive(req, res));
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${http.address().port}`;
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, handleProtocols: (protocols) => (protocols.has("push-notification") ? "push-notification" : false) });
  await new Promise((resolve) => wss.on("listening", resolve));
  const serverURL = `ws://127.0.0.1:${wss.address().port}/`;

  wss.on("connection", (socket) => {
    const send = (message) => socket.send(JSON.stringify(message));
    socket.on("message", (raw) => {
      const message = JSON.parse(raw.toString() || "{}");
      switch (message.messageType) {
        case "hello": {
          const fresh = forget || !message.uaid;
          forget = false;
          send({ messageType: "hello", status: 200, uaid: fresh ? randomUUID().replaceAll("-", "") : message.uaid, use_webpush: true, broadcasts: {} });
          break;
        }
        case "register":
          if (refuse) {
            send({ messageType: "register", channelID: message.channelID, status: 500 });
            break;
          }
          log.registers.push(message.channelID);
          channels.set(message.channelID, { socket, key: message.key ? fromB64url(message.key) : null });
          send({ messageType: "register", channelID: message.channelID, status: 200, pushEndpoint: `${origin}/push/${message.channelID}` });
          break;
        case "unregister":
          channels.delete(message.channelID);
          send({ messageType: "unregister", channelID: message.channelID, status: 200 });
          break;
        case "ack":
          log.acks.push(...(message.updates ?? []));
          break;
        default:
          socket.send("{}"); // ping
      }
    });
  });

  function receive(req, res) {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const channelID = req.url.replace(/^\/push\//, "");
      const channel = channels.get(channelID);
      const problem = !channel ? "unknown channel" : checkVapid(req.headers.authorization ?? "", channel.key, origin);
      if (problem) {
        log.rejected.push(problem);
        res.writeHead(channel ? 403 : 404).end(problem);
        return;
      }
      if (req.headers["content-encoding"] !== "aes128gcm") {
        log.rejected.push("content-encoding is not aes128gcm");
        res.writeHead(400).end();
        return;
      }
      const body = Buffer.concat(chunks);
      const version = randomUUID();
      log.received.push({ channelID, ttl: req.headers.ttl, urgency: req.headers.urgency, bytes: body.length });
      channel.socket.send(JSON.stringify({ messageType: "notification", channelID, version, data: b64url(body), headers: { encoding: "aes128gcm" } }));
      res.writeHead(201, { location: `${origin}/m/${version}` }).end();
    });
  }

  return {
    serverURL,
    origin,
    log,
    /** Loses every registration, as a push service reset would: the endpoints
     *  answer 404 from now on and connected browsers are told to start over. */
    forgetBrowsers() {
      forget = true;
      channels.clear();
      for (const client of wss.clients) client.terminate();
    },
    /** While `on`, every registration (a page's `pushManager.subscribe()`) fails. */
    refuseRegistrations(on) {
      refuse = on;
    },
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise((resolve) => wss.close(resolve));
      await new Promise((resolve) => http.close(resolve));
    },
  };
}

/** Why a push request's RFC 8292 `authorization` header is not valid for
 *  `origin` (null when it is): ES256 over the JWT with `k`, `aud`, `exp`, `sub`. */
export function checkVapid(header, registeredKey, origin) {
  const params = Object.fromEntries(header.replace(/^vapid\s+/i, "").split(",").map((p) => p.trim().split("=")).map(([k, ...v]) => [k, v.join("=")]));
  if (!params.t || !params.k) return "no vapid t= and k=";
  const key = fromB64url(params.k);
  if (registeredKey && !key.equals(registeredKey)) return "k is not the key the browser subscribed with";
  const [header64, claims64, signature64] = params.t.split(".");
  const publicKey = createPublicKey({ key: { kty: "EC", crv: "P-256", x: b64url(key.subarray(1, 33)), y: b64url(key.subarray(33, 65)) }, format: "jwk" });
  const signed = Buffer.from(`${header64}.${claims64}`);
  if (!verify("sha256", signed, { key: publicKey, dsaEncoding: "ieee-p1363" }, fromB64url(signature64))) return "bad ES256 signature";
  const claims = JSON.parse(fromB64url(claims64).toString());
  const now = Math.floor(Date.now() / 1000);
  if (claims.aud !== origin) return `aud ${claims.aud} is not ${origin}`;
  if (!(claims.exp > now && claims.exp <= now + 24 * 3600)) return `exp ${claims.exp} not within 24 h`;
  if (!/^(mailto:|https:)/.test(claims.sub ?? "")) return `sub ${claims.sub} is not mailto: or https:`;
  return null;
}
