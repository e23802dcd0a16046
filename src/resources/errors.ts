// The resource catalog shares its error classes with the client registry.
export { ConflictError, NotFoundError, ValidationError } from '../clients/errors.ts';
