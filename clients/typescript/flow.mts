// A frontend's flow through a client generated from /openapi.json: the types come
// from openapi-typescript (./schema.d.ts), the calls go through openapi-fetch.
// deploy/test_generated_clients.py generates the types from a live server,
// type-checks this file (tsc --noEmit), then runs it:
//   node dist/flow.mjs BASE_URL EMAIL PASSWORD
// Every step checks the status the API documents for it, and exits non-zero on
// the first that differs.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Problem = components["schemas"]["Error"];

const [baseUrl, email, password] = process.argv.slice(2);
if (!baseUrl || !email || !password) {
  throw new Error("usage: node flow.mjs BASE_URL EMAIL PASSWORD");
}
const api = createClient<paths>({ baseUrl });

function expect(step: string, response: Response, status: number): void {
  if (response.status !== status) {
    throw new Error(`${step}: expected ${status}, got ${response.status}`);
  }
  console.log(`ok   ${status} ${step}`);
}

function expectProblem(step: string, problem: Problem | undefined, code: string) {
  if (problem?.code !== code) {
    throw new Error(`${step}: expected the error ${code}, got ${JSON.stringify(problem)}`);
  }
}

// Sign in, then send the access token with every request.
const signIn = await api.POST("/users/tokens", { body: { email, password } });
expect("sign in", signIn.response, 201);
const accessToken = signIn.data!.access_token;
const bearer: Middleware = {
  onRequest({ request }) {
    request.headers.set("Authorization", `Bearer ${accessToken}`);
    return request;
  },
};
api.use(bearer);

// List books with a copy left.
const books = await api.GET("/books/", {
  params: { query: { available: true, sort: "title", per_page: 5 } },
});
expect("list books", books.response, 200);
const book = books.data!.items[0];
if (!book) throw new Error("list books: no book with a copy left");

// Borrow it with an Idempotency-Key, then retry: the first answer comes back.
const borrow = {
  params: {
    path: { book_id: book.id },
    header: { "Idempotency-Key": `ts-flow-${crypto.randomUUID()}` },
  },
};
const borrowed = await api.POST("/books/{book_id}/loans", borrow);
expect("borrow", borrowed.response, 201);
const loan = borrowed.data!;
const retried = await api.POST("/books/{book_id}/loans", borrow);
expect("retry the borrow", retried.response, 201);
if (retried.response.headers.get("Idempotent-Replayed") !== "true") {
  throw new Error("retry the borrow: not marked Idempotent-Replayed");
}
if (retried.data!.id !== loan.id) throw new Error("retry the borrow: a second loan");
console.log(`ok       the retry replayed loan ${loan.id}`);

// Borrowing it again without the key is a conflict: you have it already.
const again = await api.POST("/books/{book_id}/loans", {
  params: { path: { book_id: book.id } },
});
expect("borrow it again", again.response, 409);
expectProblem("borrow it again", again.error, "conflict");

// Read the book, then read it again with its ETag: not modified.
const read = await api.GET("/books/{book_id}", {
  params: { path: { book_id: book.id } },
});
expect("read the book", read.response, 200);
const etag = read.response.headers.get("ETag")!;
const cached = await api.GET("/books/{book_id}", {
  params: { path: { book_id: book.id }, header: { "If-None-Match": etag } },
});
expect("read it with If-None-Match", cached.response, 304);

// Change your name with If-Match; a second change from the same copy is refused.
const me = await api.GET("/users/me");
expect("your profile", me.response, 200);
const mine = me.response.headers.get("ETag")!;
const change = { params: { header: { "If-Match": mine } }, body: { name: "TS Flow" } };
const renamed = await api.PATCH("/users/me", change);
expect("rename yourself", renamed.response, 200);
const stale = await api.PATCH("/users/me", change);
expect("rename from a stale copy", stale.response, 412);
expectProblem("rename from a stale copy", stale.error, "precondition_failed");

// Return the loan.
const returned = await api.POST("/books/loans/{loan_id}/return", {
  params: { path: { loan_id: loan.id } },
});
expect("return the loan", returned.response, 200);
if (returned.data!.returned_at === null) throw new Error("return: no returned_at");

// Sign out: the token stops working.
const signedOut = await api.DELETE("/users/tokens/current");
expect("sign out", signedOut.response, 204);
const after = await api.GET("/users/me");
expect("your profile after signing out", after.response, 401);
console.log("the TypeScript flow completed");
