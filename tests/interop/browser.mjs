// What the Node relying parties share: the user's side of the browser flow (plain fetch,
// cookies kept by hand, Castellan's own redirects followed by hand, login and consent forms
// filled in), and running a script's `main` the way the Rust tests read it.

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

// Runs `main` on the command line's arguments: one JSON line on success; the error (and its
// cause) on stderr and exit status 1 on failure.
export async function report(main) {
  try {
    console.log(JSON.stringify(await main(process.argv.slice(2))));
  } catch (error) {
    console.error(error);
    if (error?.cause) console.error('cause:', JSON.stringify(error.cause, null, 2));
    process.exit(1);
  }
}

// The user's browser: plain fetch, cookies kept by hand, our own redirects followed by hand;
// returns the Location of the first redirect that leaves the issuer (the client's callback).
export async function signInAndAllow(issuer, authorizationUrl, username, password) {
  const cookies = new Map();
  const origin = new URL(issuer).origin;

  async function request(url, form) {
    const headers = {};
    if (cookies.size > 0) {
      headers.cookie = [...cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    }
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const response = await fetch(url, {
      method: form ? 'POST' : 'GET',
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const at = pair.indexOf('=');
      const name = pair.slice(0, at).trim();
      const value = pair.slice(at + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age\s*=\s*(0|-\d+)\s*$/i.test(a));
      if (expired || value === '') cookies.delete(name);
      else cookies.set(name, value);
    }
    return response;
  }

  async function follow(response) {
    for (let hops = 0; hops < 10; hops += 1) {
      if (response.status !== 302 && response.status !== 303) return response;
      const target = new URL(response.headers.get('location'), issuer + '/');
      if (target.origin !== origin) return response;
      await response.body?.cancel();
      response = await request(target.href);
    }
    throw new Error('too many redirects');
  }

  let response = await follow(await request(authorizationUrl.href));
  check(response.status === 200, `authorization request: HTTP ${response.status}`);
  let page = await response.text();
  response = await follow(
    await request(new URL('/login', issuer).href, {
      username,
      password,
      csrf_token: field(page, 'csrf_token'),
      return_to: field(page, 'return_to'),
    }),
  );
  if (response.status === 200) {
    page = await response.text();
    response = await request(new URL('/consent', issuer).href, {
      csrf_token: field(page, 'csrf_token'),
      request: field(page, 'request'),
      decision: 'allow',
    });
  }
  check(response.status === 302 || response.status === 303, `no redirect: HTTP ${response.status}`);
  return response.headers.get('location');
}

// The value of the input `name` in an HTML page, unescaped.
function field(page, name) {
  const match = page.match(new RegExp(`name="${name}" value="([^"]*)"`));
  check(match, `no ${name} field`);
  return match[1].replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos|#39);/gi, (_, ref) => {
    const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[ref.toLowerCase()];
    if (named) return named;
    const hex = ref[1] === 'x' || ref[1] === 'X';
    return String.fromCodePoint(parseInt(ref.slice(hex ? 2 : 1), hex ? 16 : 10));
  });
}

