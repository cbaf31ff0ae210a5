// The login page (kept out of the HTML: the Content-Security-Policy allows no inline script).
document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const error = document.getElementById("error");
  error.textContent = "";
  try {
    const r = await TR.api("/api/auth/login", { method: "POST", body: {
      email: document.getElementById("email").value, password: document.getElementById("password").value } });
    TR.csrf = r.csrf_token; sessionStorage.setItem("csrf", r.csrf_token);
    location.href = r.user.role === "patient" ? "/patient" : r.user.role === "therapist" ? "/therapist" : "/api/docs";
  } catch (e) { error.textContent = e.message; }
});
