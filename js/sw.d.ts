// Importing "askwell/sw" registers Askwell's service-worker listeners; it exports nothing.
export {};
