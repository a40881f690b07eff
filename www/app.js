// The chat demo: sending Bill a message is the meaningful action.
import { askwell } from "/askwell-setup.js";

const bill = { id: "bill", name: "Bill", avatar: "/img/bill.svg" };

document.getElementById("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = event.target.elements.message;
  const item = document.createElement("li");
  item.className = "me";
  item.textContent = input.value;
  document.getElementById("messages").append(item);
  input.value = "";
  askwell.track("message_sent", { entity: bill });
});
