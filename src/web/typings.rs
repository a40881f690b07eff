//! TypeScript declarations of the page API's plain objects (config, track
//! props, outcome details), added to `askwell.d.ts` by wasm-bindgen. The
//! exported functions name them with `unchecked_param_type` /
//! `unchecked_return_type`, so TypeScript users get their config checked
//! (a misspelt field is an excess-property error) before the runtime check.
//! The test command compiles `tests/types/*.ts` against the built package.
//! Costs nothing at run time: wasm-bindgen strips the section from the wasm.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** What `Askwell.start` takes; see the README. Invalid configs are rejected with every bad field named. */
export interface AskwellConfig {
  /** askwell-server's base URL; "" = this page's origin. Without it Askwell makes no requests (no funnel, no subscription). */
  server?: string;
  prompts: AskwellPrompt[];
  rules?: AskwellRule[];
  policy?: AskwellPolicy;
  /** The signed-in user; `proof` is made by your backend (hex HMAC-SHA256 of `id` with ASKWELL_IDENTITY_SECRET). With a proof, `traits` are sent to the server once per change. */
  user?: { id?: string; proof?: string; traits?: AskwellTraits };
  /** "required": nothing is stored (but the answer), sent or shown until `consent(true)`. */
  consent?: "required" | "not-required";
  /** Funnel events sent: all (default), none (`false`), or only those the app declares necessary (also what Global Privacy Control leaves). */
  telemetry?: boolean | AskwellTelemetry;
  /** The prompt's own status copy after "Yes". */
  messages?: { subscribing?: string; failed?: string; close?: string };
  /** Logs why each prompt is held back and emits `askwell:skipped`. */
  debug?: boolean;
  /** Action names (≤ 32) sent to the server as the signed-in user's events (name, time, entity id only), when `user` or `identify()` gave a proof. */
  forward?: string[];
}

export type AskwellEventType =
  | "prompt_shown" | "prompt_accepted" | "prompt_dismissed"
  | "native_granted" | "native_denied" | "native_dismissed" | "conversion" | "action" | "traits";

/** A user's traits: ≤ 64 names of 1–64 bytes; strings ≤ 200 bytes, finite numbers, booleans; `null` deletes one on the server. */
export type AskwellTraits = Record<string, string | number | boolean | null>;

export interface AskwellTelemetry {
  send?: "all" | "necessary" | "none";
  /** Sent even with `send: "necessary"` and under Global Privacy Control. */
  necessary?: AskwellEventType[];
  /** "honour" (default): with `navigator.globalPrivacyControl`, send only the necessary events. */
  globalPrivacyControl?: "honour" | "ignore";
}

export interface AskwellPrompt {
  id: string;
  /** "push" (default) asks for notifications; "action" opens `url`; "help" explains how to unblock. */
  kind?: "push" | "action" | "help";
  placement?: "banner" | "modal" | "inline";
  /** CSS selector of the element an inline prompt goes after. */
  anchor?: string;
  /** Plain text, ≤ 90 characters; `{entity.name}` and `{entity.id}` are filled in. */
  message?: string;
  /** ≤ 15 characters (default "Yes"). */
  accept?: string;
  /** ≤ 15 characters, never confirm-shaming (default "Not now"). */
  decline?: string;
  variants?: AskwellVariant[];
  /** Share of devices (0–0.99) never asked: the experiment's control for conversions. */
  holdout?: number;
  /** What "Yes" subscribes to, e.g. "thread:{entity.id}". */
  topic?: string;
  /** What the preference centre calls that topic, e.g. "Replies from {entity.name}" (cut to 120 characters). */
  topicLabel?: string;
  /** The page an action prompt opens. */
  url?: string;
  /** Id of the help prompt offered when notifications are blocked. */
  help?: string;
  /** Overrides `policy.coolOffDays` for this prompt. */
  coolOffDays?: number[];
}

export interface AskwellVariant {
  id: string;
  weight?: number;
  message: string;
  accept?: string;
  decline?: string;
}

/** Give `on` (an action name) or `when` (a condition), not both. */
export interface AskwellRule {
  prompt: string;
  on?: string;
  when?: AskwellCondition;
}

export type AskwellCondition =
  | { action: string; nth?: number; every?: number; count?: number; withinMinutes?: number; milestone?: number }
  | { pageViews: number }
  | { timeOnPageSeconds: number }
  | { returnAfterDays: number }
  | { path: string }
  | { trait: string; equals: string | number | boolean; in?: never; exists?: never; gte?: never; lte?: never }
  | { trait: string; in: Array<string | number | boolean>; equals?: never; exists?: never; gte?: never; lte?: never }
  | { trait: string; exists: true; equals?: never; in?: never; gte?: never; lte?: never }
  | { trait: string; gte: number; equals?: never; in?: never; exists?: never; lte?: never }
  | { trait: string; lte: number; equals?: never; in?: never; exists?: never; gte?: never }
  | { topic: string }
  | { permission: "default" | "granted" | "denied" | "unsupported" }
  | { all: AskwellCondition[] }
  | { any: AskwellCondition[] }
  | { not: AskwellCondition };

/** Never nagging; the defaults are shown in the README. */
export interface AskwellPolicy {
  coolOffDays?: number[];
  minGapSeconds?: number;
  perSession?: number;
  perWeek?: number;
  acceptRateFloor?: number;
  acceptRateWindow?: number;
  copyChecks?: "reject" | "warn";
}

export interface AskwellStartOptions {
  /** The clock (epoch milliseconds), for tests. */
  now?: () => number;
}

/** `identify(userId, { proof, traits })`: the proof your backend made for `userId`, and the user's traits. */
export interface AskwellIdentifyOptions {
  /** Hex HMAC-SHA256 of the user id with the server's ASKWELL_IDENTITY_SECRET. */
  proof: string;
  /** Sent to the server with the proof once, and again only when they change (a bad one rejects the call, naming it). */
  traits?: AskwellTraits;
}

/** Who or what the action was about: the prompt can name and show it. */
export interface AskwellEntity {
  id: string;
  name?: string;
  /** An http(s) or relative URL; anything else is not shown. */
  avatar?: string;
}

export interface AskwellTrackProps {
  entity?: AskwellEntity;
  topic?: string;
}

export type AskwellOutcome = keyof AskwellOutcomeDetails;

/** The detail of every outcome but "error". */
export interface AskwellOutcomeDetail {
  prompt: string;
  variant: string;
  trigger: string;
  entity: { id: string; name: string } | null;
  topic: string | null;
  /** "permission" only. */
  state?: "granted" | "denied" | "dismissed-native" | "unsupported" | "unsupported-needs-home-screen";
}

export interface AskwellErrorDetail {
  code: "subscribe-failed" | "server-unreachable" | "identity-unproven" | "accept-rate-guard" | "no-server" | (string & {});
  message: string;
}

/** Debug mode only: why a prompt was held back. */
export interface AskwellSkippedDetail {
  prompt: string;
  trigger: string;
  reason:
    | "already-accepted" | "cooling-off" | "exhausted" | "too-soon" | "session-budget" | "weekly-budget"
    | "permission-denied" | "unsupported" | "already-subscribed" | "accept-rate-guard" | "unstorable" | "holdout" | "prompt-open";
}

/** The detail each outcome carries (also `event.detail` of the `askwell:<name>` DOM event). */
export interface AskwellOutcomeDetails {
  shown: AskwellOutcomeDetail;
  accepted: AskwellOutcomeDetail;
  dismissed: AskwellOutcomeDetail;
  permission: AskwellOutcomeDetail & { state: NonNullable<AskwellOutcomeDetail["state"]> };
  subscribed: AskwellOutcomeDetail;
  error: AskwellErrorDetail;
  skipped: AskwellSkippedDetail;
}

/** Merged into the class (wasm-bindgen cannot declare a generic method). */
export interface Askwell {
  /**
   * Calls `callback(detail)` on each outcome named `name`, in addition to the
   * `askwell:<name>` DOM event: `on("shown", d => d.prompt)`, `on("error", d => d.code)`.
   */
  on<K extends AskwellOutcome>(name: K, callback: (detail: AskwellOutcomeDetails[K]) => void): void;
}
"#;
