// A module service worker importing Askwell's shim, as in the README.
import "askwell/sw";
import type { AskwellWorkerConfig } from "askwell/sw";

const config: AskwellWorkerConfig = { server: "https://push.example.com", fallbackTitle: "New activity" };
self.askwellConfig = config;
// @ts-expect-error: no such option
self.askwellConfig = { sever: "https://push.example.com" };
