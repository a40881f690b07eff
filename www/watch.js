// The streaming demo: finishing episodes is the meaningful action.
import { askwell } from "/askwell-setup.js";

const show = { id: "northern-lights", name: "Northern Lights" };
let episode = 1;
// Started and not finished by the next day: the continue-watching journey
// (www/journeys.json) reminds at 19:00 on the viewer's clock (forwarded
// for a signed-in user only).
document.getElementById("start").addEventListener("click", () => {
  askwell.track("episode_started", { entity: show });
});
document.getElementById("finish").addEventListener("click", () => {
  askwell.track("episode_finished", { entity: show });
  episode += 1;
  document.getElementById("episode").textContent = String(episode);
});
