// The streaming demo: finishing episodes is the meaningful action.
import { askwell } from "/askwell-setup.js";

const show = { id: "northern-lights", name: "Northern Lights" };
let episode = 1;
document.getElementById("finish").addEventListener("click", () => {
  askwell.track("episode_finished", { entity: show });
  episode += 1;
  document.getElementById("episode").textContent = String(episode);
});
