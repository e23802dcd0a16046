// The retail example's API identifiers: each is the `aud` of the tokens for
// that API, exactly as registered in gatehouse.yaml.
export const ORDERS_API = 'https://orders.retail.example';
export const PAYMENTS_API = 'https://payments.retail.example';
export const INVENTORY_API = 'https://inventory.retail.example';
