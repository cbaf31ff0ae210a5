// An invited patient chooses their password (kept out of the HTML: the
// Content-Security-Policy allows no inline script). The invitation's secret is
// in the link's fragment, which the browser never sends to a server; it is
// taken out of the address bar at once.
"use strict";

const token = location.hash.slice(1);
history.replaceState(null, "", location.pathname + location.search);
const lang = new URLSearchParams(location.search).get("lang") || localStorage.getItem("language") || "";
const ready = TR.loadCatalogue(lang).then(async () => {
  const error = document.getElementById("error");
  if (!token) { error.textContent = TR.t("welcome.noToken"); return; }
  // A spent or expired link says so at once, before a password is typed.
  try {
    await TR.api("/api/auth/welcome/check", { method: "POST", body: { token } });
  } catch (e) {
    error.textContent = e.status === 401 ? TR.t("welcome.spent") : e.message;
    if (e.status === 401) {
      for (const field of document.getElementById("welcome").elements) field.disabled = true;
    }
  }
});
document.getElementById("password").setAttribute("aria-describedby", "password-help");

document.getElementById("welcome").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  await ready;
  const error = document.getElementById("error");
  const password = document.getElementById("password"), again = document.getElementById("again");
  error.textContent = "";
  if (!token) { error.textContent = TR.t("welcome.noToken"); return; }
  if (!password.value) { error.textContent = TR.t("welcome.empty"); password.focus(); return; }
  if (password.value !== again.value) { error.textContent = TR.t("welcome.mismatch"); again.focus(); return; }
  try {
    const r = await TR.api("/api/auth/welcome", { method: "POST", body: { token, password: password.value } });
    TR.csrf = r.csrf_token; sessionStorage.setItem("csrf", r.csrf_token);
    location.href = "/patient";
  } catch (e) {
    error.textContent = e.status === 401 ? TR.t("welcome.spent") : e.status === 422 ? TR.t("welcome.weak") : e.message;
  }
});
