declare namespace App {
  interface Locals {
    candor: import('./runtime/context.ts').AppContext;
    /** the signed-in staff member and session on console requests, else null */
    auth: { staff: import('./core/auth/session.ts').StaffMember; session: import('./core/auth/session.ts').Session } | null;
    /** what src/pages/error.astro shows when src/lib/error-page.ts renders it for a refusal */
    errorPage?: import('./lib/error-page.ts').ErrorPage;
  }
}
