// The API reference: renders the OpenAPI document the service serves (api/v1/openapi.json).
//
// Small on purpose: paths, methods, parameters, request bodies, responses with their headers
// and examples, component schemas and top-level `x-` tables. Everything is built as DOM nodes
// with textContent, never as HTML strings, so no text from the document can become markup.

const CONTRACT_URL = "api/v1/openapi.json";
const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];
const MAX_SCHEMA_DEPTH = 4;

// --- DOM helpers ----------------------------------------------------------------------

function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "className") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return node;
}

function code(text) {
  return h("code", {}, String(text));
}

// --- a little Markdown: paragraphs, "- " lists, `code`, **bold**, [links](url) -------------

const INLINE = /`([^`]+)`|\*\*([^*]+)\*\*|\[([^\]]+)\]\(([^)\s]+)\)/g;

function inline(text) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    if (match.index > last) nodes.push(text.slice(last, match.index));
    if (match[1] !== undefined) nodes.push(code(match[1]));
    else if (match[2] !== undefined) nodes.push(h("strong", {}, match[2]));
    else nodes.push(link(match[3], match[4]));
    last = match.index + match[0].length;
  }
  if (last < text.length) nodes.push(text.slice(last));
  return nodes;
}

function link(text, target) {
  // Only web and relative addresses become links; anything else (javascript:, data:) stays text.
  if (/^(https?:\/\/|#|\.{0,2}\/|[\w.-]+(#[\w-]*)?$)/i.test(target)) {
    return h("a", { href: target, rel: "noopener noreferrer" }, text);
  }
  return `${text} (${target})`;
}

function markdown(text) {
  const fragment = document.createDocumentFragment();
  if (!text) return fragment;
  for (const block of String(text)
    .trim()
    .split(/\n\s*\n/)) {
    const lines = block.split("\n");
    if (/^\s*[-*] /.test(lines[0])) {
      const items = [];
      for (const line of lines) {
        if (/^\s*[-*] /.test(line)) items.push(line.replace(/^\s*[-*] /, ""));
        else if (items.length) items[items.length - 1] += ` ${line.trim()}`;
      }
      fragment.append(
        h(
          "ul",
          {},
          items.map((item) => h("li", {}, inline(item))),
        ),
      );
    } else {
      fragment.append(h("p", {}, inline(lines.map((line) => line.trim()).join(" "))));
    }
  }
  return fragment;
}

// --- references and schemas -----------------------------------------------------------

function makeResolver(contract) {
  return function resolve(node) {
    let current = node;
    const seen = new Set();
    while (current && typeof current.$ref === "string") {
      if (seen.has(current.$ref) || !current.$ref.startsWith("#/")) break;
      seen.add(current.$ref);
      current = current.$ref
        .slice(2)
        .split("/")
        .map((part) => part.replaceAll("~1", "/").replaceAll("~0", "~"))
        .reduce((value, key) => (value === undefined ? undefined : value[key]), contract);
    }
    return current ?? {};
  };
}

function refName(node) {
  const match = /^#\/components\/schemas\/(.+)$/.exec(node?.$ref ?? "");
  return match ? match[1] : null;
}

function typeLabel(schema, resolve) {
  const name = refName(schema);
  if (name) return h("a", { href: `#schema-${name}`, className: "type" }, name);
  const resolved = resolve(schema);
  if (resolved.type === "array") {
    return h("span", { className: "type" }, "array of ", typeLabel(resolved.items ?? {}, resolve));
  }
  let label = resolved.type ?? (resolved.properties ? "object" : "any");
  if (resolved.format === "binary") label = "file (binary)";
  else if (resolved.format) label += ` (${resolved.format})`;
  if (resolved.nullable) label += " or null";
  return h("span", { className: "type" }, label);
}

function constraints(schema) {
  const notes = [];
  if (schema.enum) notes.push(h("span", {}, "one of ", ...listOf(schema.enum.map((v) => code(v)))));
  for (const [key, words] of [
    ["minimum", "≥"],
    ["maximum", "≤"],
    ["minLength", "length ≥"],
    ["maxLength", "length ≤"],
    ["default", "default"],
  ]) {
    if (schema[key] !== undefined)
      notes.push(h("span", {}, `${words} `, code(JSON.stringify(schema[key]))));
  }
  if (schema.example !== undefined) {
    notes.push(h("span", {}, "example ", code(JSON.stringify(schema.example))));
  }
  return notes.length ? h("div", { className: "constraints" }, ...listOf(notes, " · ")) : null;
}

function listOf(nodes, separator = ", ") {
  const out = [];
  nodes.forEach((node, index) => {
    if (index) out.push(separator);
    out.push(node);
  });
  return out;
}

/** A table of an object schema's properties; nested inline objects get their own table. */
function propertiesTable(schema, resolve, depth = 0) {
  const resolved = resolve(schema);
  const properties = resolved.properties ?? {};
  if (!Object.keys(properties).length || depth > MAX_SCHEMA_DEPTH) return null;
  const required = new Set(resolved.required ?? []);
  const rows = Object.entries(properties).map(([name, property]) => {
    const inner = resolve(property);
    const nested =
      !refName(property) && (inner.properties || inner.items?.properties)
        ? propertiesTable(inner.properties ? inner : inner.items, resolve, depth + 1)
        : null;
    return h(
      "tr",
      {},
      h(
        "td",
        {},
        code(name),
        required.has(name) ? h("span", { className: "badge" }, "required") : null,
      ),
      h("td", {}, typeLabel(property, resolve)),
      h("td", {}, markdown(inner.description ?? property.description), constraints(inner), nested),
    );
  });
  return h(
    "table",
    { className: "fields" },
    h(
      "thead",
      {},
      h("tr", {}, h("th", {}, "Field"), h("th", {}, "Type"), h("th", {}, "Description")),
    ),
    h("tbody", {}, rows),
  );
}

function schemaBlock(schema, resolve) {
  if (!schema) return null;
  return h(
    "div",
    { className: "schema" },
    h("p", { className: "body-type" }, "Body: ", typeLabel(schema, resolve)),
    propertiesTable(schema, resolve),
  );
}

function examplesBlock(media) {
  const examples = [];
  if (media.example !== undefined) examples.push(["Example", media.example]);
  for (const [name, example] of Object.entries(media.examples ?? {})) {
    examples.push([example.summary ?? name, example.value]);
  }
  return examples.map(([title, value]) =>
    h(
      "figure",
      { className: "example" },
      h("figcaption", {}, title),
      h("pre", {}, typeof value === "string" ? value : JSON.stringify(value, null, 2)),
    ),
  );
}

// --- operations -----------------------------------------------------------------------

function securityLine(operation, contract) {
  const requirements = operation.security ?? contract.security ?? [];
  const schemes = contract.components?.securitySchemes ?? {};
  const names = requirements.flatMap((requirement) => Object.keys(requirement));
  if (!names.length) return h("p", { className: "auth public" }, "Public: no API key needed.");
  return h(
    "p",
    { className: "auth" },
    "Needs ",
    ...listOf(
      names.map((name) => {
        const scheme = schemes[name] ?? {};
        return scheme.type === "apiKey"
          ? h("span", {}, "an API key in the ", code(scheme.name), ` ${scheme.in}`)
          : h("a", { href: "#authentication" }, name);
      }),
      " or ",
    ),
    ".",
  );
}

function parametersBlock(parameters, resolve) {
  if (!parameters.length) return null;
  return h(
    "section",
    {},
    h("h4", {}, "Parameters"),
    h(
      "table",
      { className: "fields" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", {}, "Name"),
          h("th", {}, "In"),
          h("th", {}, "Type"),
          h("th", {}, "Description"),
        ),
      ),
      h(
        "tbody",
        {},
        parameters.map((parameter) =>
          h(
            "tr",
            {},
            h(
              "td",
              {},
              code(parameter.name),
              parameter.required ? h("span", { className: "badge" }, "required") : null,
            ),
            h("td", {}, parameter.in),
            h("td", {}, typeLabel(parameter.schema ?? {}, resolve)),
            h(
              "td",
              {},
              markdown(parameter.description),
              constraints(resolve(parameter.schema ?? {})),
            ),
          ),
        ),
      ),
    ),
  );
}

function requestBodyBlock(body, resolve) {
  if (!body) return null;
  const resolved = resolve(body);
  const contents = Object.entries(resolved.content ?? {});
  return h(
    "section",
    {},
    h(
      "h4",
      {},
      "Request body",
      resolved.required ? h("span", { className: "badge" }, "required") : null,
    ),
    markdown(resolved.description),
    contents.map(([mediaType, media]) =>
      h(
        "div",
        { className: "media" },
        h("p", {}, code(mediaType)),
        schemaBlock(media.schema, resolve),
        encodingBlock(media.encoding),
        examplesBlock(media),
      ),
    ),
  );
}

function encodingBlock(encoding) {
  if (!encoding) return null;
  return h(
    "p",
    { className: "encoding" },
    "Part types: ",
    ...listOf(
      Object.entries(encoding).map(([field, value]) =>
        h("span", {}, code(field), ` ${value.contentType ?? ""}`),
      ),
    ),
  );
}

function headersTable(headers, resolve) {
  const entries = Object.entries(headers ?? {});
  if (!entries.length) return null;
  return h(
    "table",
    { className: "fields headers" },
    h(
      "thead",
      {},
      h("tr", {}, h("th", {}, "Header"), h("th", {}, "Type"), h("th", {}, "Description")),
    ),
    h(
      "tbody",
      {},
      entries.map(([name, header]) => {
        const resolved = resolve(header);
        return h(
          "tr",
          {},
          h("td", {}, code(name)),
          h("td", {}, typeLabel(resolved.schema ?? {}, resolve)),
          h("td", {}, markdown(resolved.description), constraints(resolve(resolved.schema ?? {}))),
        );
      }),
    ),
  );
}

function responsesBlock(responses, resolve) {
  return h(
    "section",
    {},
    h("h4", {}, "Responses"),
    Object.entries(responses ?? {}).map(([status, response]) => {
      const resolved = resolve(response);
      const kind = status.startsWith("2") ? "ok" : status.startsWith("3") ? "redirect" : "error";
      return h(
        "details",
        {
          className: `response response-${kind}`,
          open: status.startsWith("2"),
          dataset: { status },
        },
        h(
          "summary",
          {},
          h("span", { className: "status" }, status),
          " ",
          inline(resolved.description ?? ""),
        ),
        headersTable(resolved.headers, resolve),
        Object.entries(resolved.content ?? {}).map(([mediaType, media]) =>
          h(
            "div",
            { className: "media" },
            h("p", {}, code(mediaType)),
            schemaBlock(media.schema, resolve),
            examplesBlock(media),
          ),
        ),
      );
    }),
  );
}

function curlExample(method, path, operation, contract, resolve) {
  const base = new URL(".", window.location.href).href.replace(/\/$/, "");
  const lines = [`curl -X ${method.toUpperCase()} "${base}${path}"`];
  const requirements = operation.security ?? contract.security ?? [];
  const schemes = contract.components?.securitySchemes ?? {};
  for (const name of requirements.flatMap((requirement) => Object.keys(requirement))) {
    const scheme = schemes[name];
    if (scheme?.type === "apiKey" && scheme.in === "header") {
      lines.push(`  -H "${scheme.name}: $API_KEY"`);
    }
  }
  const body = resolve(operation.requestBody);
  const multipart = body.content?.["multipart/form-data"];
  if (multipart) {
    const schema = resolve(multipart.schema ?? {});
    for (const [field, property] of Object.entries(schema.properties ?? {})) {
      const resolved = resolve(property);
      const sample = { image: "photo.jpg", mask: "mask.png" }[field] ?? `${field}.png`;
      lines.push(resolved.format === "binary" ? `  -F "${field}=@${sample}"` : `  -F "${field}=…"`);
    }
  }
  const success = Object.entries(operation.responses ?? {}).find(([status]) =>
    status.startsWith("2"),
  );
  const media = Object.keys(resolve(success?.[1]).content ?? {});
  if (media.some((type) => type.startsWith("image/"))) lines.push("  -o result.png");
  return h(
    "figure",
    { className: "example curl" },
    h("figcaption", {}, "With curl"),
    h("pre", {}, lines.join(" \\\n")),
  );
}

function operationId(method, path, operation) {
  return `op-${operation.operationId ?? `${method}${path.replace(/[^\w]+/g, "-")}`}`;
}

function operationSection(method, path, operation, pathItem, contract, resolve) {
  const parameters = [...(pathItem.parameters ?? []), ...(operation.parameters ?? [])].map(resolve);
  return h(
    "section",
    { className: "operation", id: operationId(method, path, operation), dataset: { method, path } },
    h(
      "h3",
      {},
      h("span", { className: `method ${method}` }, method.toUpperCase()),
      " ",
      h("code", { className: "path" }, path),
    ),
    operation.summary ? h("p", { className: "summary" }, operation.summary) : null,
    securityLine(operation, contract),
    markdown(operation.description),
    parametersBlock(parameters, resolve),
    requestBodyBlock(operation.requestBody, resolve),
    responsesBlock(operation.responses, resolve),
    curlExample(method, path, operation, contract, resolve),
  );
}

// --- the whole document ---------------------------------------------------------------

function operationsByTag(contract) {
  const groups = new Map((contract.tags ?? []).map((tag) => [tag.name, { tag, operations: [] }]));
  for (const [path, pathItem] of Object.entries(contract.paths ?? {})) {
    for (const method of METHODS) {
      const operation = pathItem[method];
      if (!operation) continue;
      const name = operation.tags?.[0] ?? "Other";
      if (!groups.has(name)) groups.set(name, { tag: { name }, operations: [] });
      groups.get(name).operations.push({ method, path, operation, pathItem });
    }
  }
  return [...groups.values()].filter((group) => group.operations.length);
}

function introSection(contract) {
  const info = contract.info ?? {};
  return h(
    "section",
    { id: "overview" },
    h(
      "h1",
      {},
      info.title ?? "API reference",
      " ",
      h("span", { className: "version" }, `v${info.version ?? "?"}`),
    ),
    markdown(info.description),
    (contract.servers ?? []).length
      ? h(
          "p",
          {},
          "Servers: ",
          ...listOf(
            contract.servers.map((server) =>
              h(
                "span",
                {},
                code(server.url),
                server.description ? [" (", ...inline(server.description), ")"] : "",
              ),
            ),
          ),
        )
      : null,
    h(
      "p",
      {},
      "Machine-readable: ",
      h("a", { href: CONTRACT_URL }, CONTRACT_URL),
      ". Try the routes in the ",
      h("a", { href: "playground" }, "playground"),
      ".",
    ),
  );
}

function authenticationSection(contract) {
  const schemes = Object.entries(contract.components?.securitySchemes ?? {});
  if (!schemes.length) return null;
  return h(
    "section",
    { id: "authentication" },
    h("h2", {}, "Authentication"),
    schemes.map(([name, scheme]) =>
      h(
        "div",
        { className: "scheme" },
        h("h3", {}, name),
        h(
          "p",
          {},
          scheme.type === "apiKey"
            ? ["API key in the ", code(scheme.name), ` ${scheme.in}.`]
            : `${scheme.type}.`,
        ),
        markdown(scheme.description),
      ),
    ),
  );
}

function schemasSection(contract, resolve) {
  const schemas = Object.entries(contract.components?.schemas ?? {});
  if (!schemas.length) return null;
  return h(
    "section",
    { id: "schemas" },
    h("h2", {}, "Schemas"),
    schemas.map(([name, schema]) =>
      h(
        "section",
        { className: "schema-def", id: `schema-${name}` },
        h("h3", {}, name, " ", typeLabel({ ...schema, $ref: undefined }, resolve)),
        markdown(schema.description),
        propertiesTable(schema, resolve) ?? constraints(schema),
      ),
    ),
  );
}

function extensionTitle(key) {
  const words = key.replace(/^x-/, "").replace(/[-_]+/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function extensionsSection(contract) {
  const tables = Object.entries(contract)
    .filter(
      ([key, value]) =>
        key.startsWith("x-") &&
        Array.isArray(value) &&
        value.every((row) => row && typeof row === "object"),
    )
    .map(([key, rows]) => {
      const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
      return h(
        "section",
        { id: key },
        h("h2", {}, extensionTitle(key)),
        h(
          "table",
          { className: "fields" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              columns.map((column) => h("th", {}, column)),
            ),
          ),
          h(
            "tbody",
            {},
            rows.map((row) =>
              h(
                "tr",
                {},
                columns.map((column) =>
                  h("td", {}, row[column] === undefined ? "" : String(row[column])),
                ),
              ),
            ),
          ),
        ),
      );
    });
  return tables.length ? tables : null;
}

function tableOfContents(groups, contract) {
  const schemas = Object.keys(contract.components?.schemas ?? {});
  return [
    h("h2", {}, "Contents"),
    h(
      "ul",
      {},
      h("li", {}, h("a", { href: "#overview" }, "Overview")),
      contract.components?.securitySchemes
        ? h("li", {}, h("a", { href: "#authentication" }, "Authentication"))
        : null,
      groups.map(({ tag, operations }) =>
        h(
          "li",
          {},
          h("a", { href: `#tag-${tag.name}` }, tag.name),
          h(
            "ul",
            {},
            operations.map(({ method, path, operation }) =>
              h(
                "li",
                {},
                h(
                  "a",
                  { href: `#${operationId(method, path, operation)}` },
                  h("span", { className: `method ${method}` }, method.toUpperCase()),
                  " ",
                  path,
                ),
              ),
            ),
          ),
        ),
      ),
      schemas.length
        ? h(
            "li",
            {},
            h("a", { href: "#schemas" }, "Schemas"),
            h(
              "ul",
              {},
              schemas.map((name) => h("li", {}, h("a", { href: `#schema-${name}` }, name))),
            ),
          )
        : null,
    ),
  ];
}

function render(contract) {
  const resolve = makeResolver(contract);
  const groups = operationsByTag(contract);
  const main = document.getElementById("reference");
  main.replaceChildren(
    introSection(contract),
    authenticationSection(contract) ?? "",
    ...groups.map(({ tag, operations }) =>
      h(
        "section",
        { className: "tag", id: `tag-${tag.name}` },
        h("h2", {}, tag.name),
        markdown(tag.description),
        operations.map(({ method, path, operation, pathItem }) =>
          operationSection(method, path, operation, pathItem, contract, resolve),
        ),
      ),
    ),
    schemasSection(contract, resolve) ?? "",
    ...(extensionsSection(contract) ?? []),
  );
  document.getElementById("toc").replaceChildren(...tableOfContents(groups, contract));
  document.title = `${contract.info?.title ?? "API"} · reference`;
  if (window.location.hash)
    document.getElementById(window.location.hash.slice(1))?.scrollIntoView();
}

async function main() {
  const container = document.getElementById("reference");
  try {
    const response = await fetch(CONTRACT_URL, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${CONTRACT_URL} answered ${response.status}`);
    render(await response.json());
    document.documentElement.dataset.ready = "true";
  } catch (error) {
    container.replaceChildren(
      h(
        "p",
        { className: "load-error", role: "alert" },
        `The contract could not be loaded: ${error.message}`,
      ),
    );
    document.documentElement.dataset.ready = "error";
  }
}

main();
