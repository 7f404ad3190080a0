// Reading the page's location hash. Pure (no DOM), so tests run it under node.

// The path in a location hash ("#/tasks/x" -> "/tasks/x"; "" or "#" -> "/"), or null when the hash is
// not valid percent-encoding: a hand-typed or truncated link ("#%", "#/tasks/%E0%A4") made decodeURI
// throw, which left the page blank; it now shows "no such page" like any other unknown route.
export function hashPath(hash) {
  try {
    return decodeURI(hash.replace(/^#/, "")) || "/";
  } catch (error) {
    if (error instanceof URIError) return null;
    throw error;
  }
}
