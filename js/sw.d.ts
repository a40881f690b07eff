// Importing "askwell/sw" registers Askwell's service-worker listeners; it
// exports only the type of the optional `self.askwellConfig`.

/** `self.askwellConfig`, read when each event arrives (so it may be set after the import). */
export interface AskwellWorkerConfig {
  /** askwell-server's base URL: shown/click/dismiss reports, one-tap preference changes, endpoint swaps and re-subscriptions; "" (default) = same origin. */
  server?: string;
  /** Title shown when an Askwell push cannot be read (a notification is always shown). */
  fallbackTitle?: string;
  /** Classic workers only: the folder where `sw-classic.js` finds its wasm, absolute or relative to the worker's URL (default: next to the script). If it cannot load, Askwell's pushes still show `fallbackTitle`. */
  packageUrl?: string;
}

declare global {
  // `var`, so that `self.askwellConfig = …` type-checks in a worker.
  // eslint-disable-next-line no-var
  var askwellConfig: AskwellWorkerConfig | undefined;
}
