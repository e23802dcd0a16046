// oidc-provider warns on every start that Node.js 20 is not its preferred
// runtime. Gatehouse supports Node.js >= 20.19 (measured and tested on 20),
// so that one line is noise in front of our own one-line errors. Imported
// first by main.ts so that it is in place before oidc-provider loads.
const warn = console.warn.bind(console);
console.warn = (...args: unknown[]) => {
  if (typeof args[0] === 'string' && args[0].includes('oidc-provider WARNING: Unsupported runtime')) return;
  warn(...args);
};
