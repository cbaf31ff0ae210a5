// The login page (kept out of the HTML: the Content-Security-Policy allows no inline script).
"use strict";
// What this page says (one place, for a message catalogue later).
const SAY = {
  missing: { both: "Enter your e-mail and password.", email: "Enter your e-mail.", password: "Enter your password." },
};

document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const error = document.getElementById("error");
  const email = document.getElementById("email"), password = document.getElementById("password");
  error.textContent = "";
  const missing = !email.value.trim() && !password.value ? "both" : !email.value.trim() ? "email" : !password.value ? "password" : "";
  email.setAttribute("aria-invalid", String(!email.value.trim()));
  password.setAttribute("aria-invalid", String(!password.value));
  if (missing) {  // nothing is sent: an empty form is not a failed login
    error.textContent = SAY.missing[missing];
    (missing === "password" ? password : email).focus();
    return;
  }
  try {
    const r = await TR.api("/api/auth/login", { method: "POST", body: { email: email.value, password: password.value } });
    TR.csrf = r.csrf_token; sessionStorage.setItem("csrf", r.csrf_token);
    location.href = r.user.role === "patient" ? "/patient" : r.user.role === "therapist" ? "/therapist" : "/api/docs";
  } catch (e) { error.textContent = e.message; }
});
