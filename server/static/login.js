// The login page (kept out of the HTML: the Content-Security-Policy allows no inline script).
// Its language: the one picked here before (kept in this browser), else the
// one the browser asks for (Accept-Language), else English.
"use strict";

const picked = localStorage.getItem("language") || "";
const ready = TR.loadCatalogue(picked).then(() => {
  TR.languageSelect(document.getElementById("language"), TR.lang, async (lang) => {
    localStorage.setItem("language", lang);
    await TR.loadCatalogue(lang);
  });
});

document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  await ready;
  const error = document.getElementById("error");
  const email = document.getElementById("email"), password = document.getElementById("password");
  error.textContent = "";
  const missing = !email.value.trim() && !password.value ? "both" : !email.value.trim() ? "email" : !password.value ? "password" : "";
  email.setAttribute("aria-invalid", String(!email.value.trim()));
  password.setAttribute("aria-invalid", String(!password.value));
  if (missing) {  // nothing is sent: an empty form is not a failed login
    error.textContent = TR.t(`login.missing.${missing}`);
    (missing === "password" ? password : email).focus();
    return;
  }
  try {
    const r = await TR.api("/api/auth/login", { method: "POST", body: { email: email.value, password: password.value } });
    TR.csrf = r.csrf_token; sessionStorage.setItem("csrf", r.csrf_token);
    // replace: Back from the home page does not return to a sign-in form already used
    location.replace(r.user.role === "patient" ? "/patient" : r.user.role === "therapist" ? "/therapist" : "/api/docs");
  } catch (e) { error.textContent = e.status === 401 ? TR.t("error.login") : e.message; }
});
