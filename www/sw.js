// The demo app's own service worker. It imports Askwell's shim (which shows
// Askwell's pushes and handles their clicks) and keeps handling the app's own
// pushes itself — the two coexist in one worker.
import "/pkg/sw.js";

self.askwellConfig = { server: "", fallbackTitle: "New activity in the Askwell demo" };

// The app's own pushes (no Askwell marker): shown with an "[app]" prefix.
self.addEventListener("push", (event) => {
  let payload = null;
  try {
    payload = event.data?.json();
  } catch {
    payload = null;
  }
  if (payload && payload.askwell !== 1) {
    event.waitUntil(self.registration.showNotification(`[app] ${payload.title ?? "Update"}`, { body: payload.body ?? "" }));
  }
});
