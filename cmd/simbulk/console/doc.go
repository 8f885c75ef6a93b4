// Package console is simbulk's web console (`simbulk serve`): the second
// front door to the same rollout service, checkpoint and reports the
// command line uses, for logistics teams who upload spreadsheets rather
// than run commands.
//
// A person logs in, uploads a CSV or XLSX manifest, reads its problems row
// by row (the same codes and words as `simbulk validate`), confirms the
// plan, then watches the rollout live, stops, resumes or retries it, and
// downloads its reports. Runs started from the command line on the same
// checkpoint show up and update too: the run page follows the checkpoint,
// not the process that drives it, and the checkpoint lock decides who
// drives.
//
// Everything is served from the binary (templates and assets embedded, no
// CDN, no build step). Pages are html/template, so every manifest cell is
// escaped; live updates are server-sent events. The JSON API under
// /api/ answers in the shapes of `simbulk status --json` for scripts.
//
// Safety: users and bcrypt hashes come from the config; sessions are
// random tokens in HttpOnly, SameSite=Strict cookies; every state-changing
// request carries a CSRF token; login attempts are rate-limited per
// address; every action is recorded with its user and time; uploads are
// stored owner-only with a size limit; provider secrets never reach this
// package at all (it sees lanes through the rollout service).
package console
