// The ways to look: table, Mermaid, dot, SVG and JSON of the same map are
// sorted and stable (the same registry in any order renders the same bytes),
// and the SVG is accessible (title, desc with the text alternative) and inert.
import { describe, expect, it } from 'vitest';
import { buildModel, TOKEN_EXCHANGE, type Registry } from '../../src/access/model.ts';
import { renderSvg } from '../../src/access/svg.ts';
import { accessMapView, renderDot, renderMermaid, renderTable } from '../../src/access/views.ts';
import { NotFoundError, ValidationError } from '../../src/kernel/errors.ts';

const registry: Registry = {
  apis: [
    { identifier: 'https://orders', scopes: ['orders:write'], servedBy: ['orders-svc'] },
    { identifier: 'https://pay', scopes: ['pay:charge', 'pay:read'], servedBy: [], sensitiveScopes: ['pay:charge'] },
  ],
  clients: [
    { id: 'shop', grants: ['authorization_code', 'client_credentials'], scopes: ['orders:write'], resources: ['https://orders'] },
    { id: 'orders-svc', grants: [TOKEN_EXCHANGE], scopes: ['pay:charge'], resources: ['https://pay'] },
    { id: 'reports', grants: ['client_credentials'], scopes: ['pay:read'], resources: ['https://pay'] },
  ],
  roles: [],
};
const shuffled: Registry = { apis: [...registry.apis].reverse(), clients: [...registry.clients].reverse(), roles: [] };

describe('access map views', () => {
  it('render the same bytes whatever the order of the registry', () => {
    for (const q of [{}, { client: 'shop' }, { ifLeaked: 'shop' }, { api: 'https://pay', scope: 'pay:charge' }]) {
      const a = accessMapView(buildModel(registry), q);
      const b = accessMapView(buildModel(shuffled), q);
      expect(JSON.stringify(b)).toBe(JSON.stringify(a));
      for (const render of [renderTable, renderMermaid, renderDot]) expect(render(b)).toBe(render(a));
      expect(renderSvg(b).svg).toBe(renderSvg(a).svg);
    }
  });

  it('the table lists principal, API, scope, sensitivity, chain and path', () => {
    expect(renderTable(accessMapView(buildModel(registry), { api: 'https://pay', scope: 'pay:charge' }))).toBe(
      [
        '3 principals reach 1 scope on 1 API (1 sensitive); longest exchange chain: 1',
        'PRINCIPAL          API          SCOPE       SENSITIVE  CHAIN  PATH',
        "client:orders-svc  https://pay  pay:charge  yes        1      (a caller's token for https://orders, served by orders-svc) -[exchange by orders-svc]-> https://pay",
        'client:shop        https://pay  pay:charge  yes        1      shop -[client_credentials]-> https://orders -[exchange by orders-svc]-> https://pay',
        'people             https://pay  pay:charge  yes        1      sign-in via shop -> https://orders -[exchange by orders-svc]-> https://pay',
      ].join('\n'),
    );
    expect(accessMapView(buildModel(registry), { api: 'https://pay' }).entries.map((e) => `${e.principal} ${e.scope}`)).toEqual([
      'client:orders-svc pay:charge',
      'client:shop pay:charge',
      'people pay:charge',
      'client:reports pay:read',
    ]);
  });

  it('mermaid and dot draw who reaches what with the edges of the paths', () => {
    const v = accessMapView(buildModel(registry), { ifLeaked: 'shop' });
    expect(renderMermaid(v)).toContain('-->|"exchange by orders-svc"|');
    expect(renderMermaid(v).split('\n')[0]).toBe('flowchart LR');
    expect(renderDot(v)).toContain('"api:https://orders" -> "api:https://pay" [label="exchange by orders-svc"];');
  });

  it('the SVG has a title, a desc holding the text alternative, and no script or external reference', () => {
    const v = accessMapView(buildModel(registry), {});
    const { svg, text } = renderSvg(v);
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" role="img" aria-labelledby="am-title am-desc"/);
    expect(svg).toContain('<title id="am-title">Access map</title>');
    expect(text).toBe(renderTable(v));
    expect(svg).toContain(`<desc id="am-desc">${text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')}</desc>`);
    expect(svg).not.toMatch(/<script|href=|url\((?!#arrow)/);
    expect(svg).toContain('prefers-color-scheme:dark');
  });

  it('refuses unknown clients and APIs, and filters that mean nothing together', () => {
    const m = buildModel(registry);
    expect(() => accessMapView(m, { client: 'nobody' })).toThrow(NotFoundError);
    expect(() => accessMapView(m, { api: 'https://nowhere' })).toThrow(NotFoundError);
    expect(() => accessMapView(m, { client: 'shop', ifLeaked: 'shop' })).toThrow(ValidationError);
    expect(() => accessMapView(m, { scope: 'pay:charge' })).toThrow(/needs api/);
    expect(() => accessMapView(m, { api: 'https://pay', scope: 'nope' })).toThrow(/not a scope/);
  });
});
