// Errors of edge operations that the admin API turns into 404 and 409 answers.
export class NotFoundError extends Error {}
export class ConflictError extends Error {}
