/**
 * Kernel command-line arguments as ostree edits them (OstreeKernelArgs): an ordered list where
 * `--karg=KEY=VALUE` replaces every value of KEY (or appends when KEY is new), `--karg-append`
 * always appends and `--karg-delete` removes one value (or the key when it has a single value).
 * Pure.
 */
export type Kargs = readonly string[];

export function parseKargs(text: string | undefined): string[] {
  return (text ?? '').split(/\s+/).filter((a) => a !== '');
}

export function kargKey(arg: string): string {
  const i = arg.indexOf('=');
  return i < 0 ? arg : arg.slice(0, i);
}

/** Replaces all values of the argument's key in place (first position), or appends it. */
export function replaceKarg(kargs: Kargs, arg: string): string[] {
  const key = kargKey(arg);
  const out: string[] = [];
  let done = false;
  for (const a of kargs) {
    if (kargKey(a) !== key) out.push(a);
    else if (!done) {
      out.push(arg);
      done = true;
    }
  }
  if (!done) out.push(arg);
  return out;
}

export function appendKarg(kargs: Kargs, arg: string): string[] {
  return [...kargs, arg];
}

/** Deletes `KEY=VALUE` (that value) or `KEY` (every value of the key). */
export function deleteKarg(kargs: Kargs, arg: string): string[] {
  if (arg.includes('=')) {
    const i = kargs.indexOf(arg);
    return i < 0 ? [...kargs] : [...kargs.slice(0, i), ...kargs.slice(i + 1)];
  }
  return kargs.filter((a) => kargKey(a) !== arg);
}

/** Kernel arguments without the ones ostree manages itself (ostree=, init=…ostree-prepare-root). */
export function userKargs(kargs: Kargs): string[] {
  return kargs.filter((a) => kargKey(a) !== 'ostree' && !(a.startsWith('init=') && a.includes('/ostree/boot.')));
}

export function formatKargs(kargs: Kargs): string {
  return kargs.join(' ');
}
