declare namespace App {
  interface Locals {
    candor: import('./runtime/context.ts').AppContext;
  }
}
