"use strict";
(() => {
  const p = new URLSearchParams(location.search);
  if (p.get("failed")) document.getElementById("failed").hidden = false;
  if ((p.get("next") || "").startsWith("/ui/")) document.getElementById("next").value = p.get("next");
})();
