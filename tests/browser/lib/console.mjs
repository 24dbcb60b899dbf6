// Signs in to the operator console as the demo's operator of a role, the
// way a person does: the sign-in form, then the console's shell.
export { seriousViolations } from "./axe.mjs";

/** Signs `page` in as the demo operator with `role` (viewer, reviewer, admin); lands on `next`. */
export async function login(page, demo, role, next = "/console") {
  const { email, password } = demo.operator(role);
  await page.goto(`${demo.url}/console/login?next=${encodeURIComponent(next)}`);
  await page.fill("#email", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL((u) => u.pathname.startsWith("/console") && !u.pathname.startsWith("/console/login")), page.click('button[type="submit"]')]);
  await page.locator("#who .role").waitFor();
}
