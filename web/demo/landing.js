// A card's start button begins a new order: forget the one kept for this tab.
for (const link of document.querySelectorAll("a[data-flow]")) {
  link.addEventListener("click", () => sessionStorage.removeItem(`order:${link.dataset.flow}`));
}
