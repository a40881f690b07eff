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
  // A conversion for the funnel: the user answered after Bill replied.
  if (billReplied) askwell.convert("replied");
  billReplied = false;
  askwell.track("message_sent", { entity: bill });
  setTimeout(reply, 1500);
});

let billReplied = false;
function reply() {
  const item = document.createElement("li");
  item.className = "them";
  item.textContent = "👍";
  document.getElementById("messages").append(item);
  billReplied = true;
}
