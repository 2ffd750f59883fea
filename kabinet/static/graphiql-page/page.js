/*
 * kabinet GraphiQL: the fetcher, the WebSocket client and GraphiQL itself.
 *
 * Authorization of an operation: an "Authorization" header typed into the Headers editor (one that does
 * not still hold a "<…>" placeholder) wins; otherwise the signed-in token of the bar (signin.js).
 *   * HTTP (queries, mutations): POST /graphql with `Authorization: Bearer …`.
 *   * WebSocket (subscriptions, graphql-transport-ws, ws(s)://<this host>/graphql): the token goes in the
 *     connection_init payload {"authorization": "Bearer …"} (kabinet/graphql_view.py on_ws_connect).
 *     When the token changes (sign-in, refresh, sign-out, another header) an open socket is closed with
 *     4205 and reopened with the new one; running subscriptions are subscribed again on it.
 *     No valid token: the server closes with 4403 and the result pane says so.
 * The default tab's operations are /static/graphiql-page/default-query.graphql (tests run them).
 */
(function () {
  "use strict";

  var HTTP_URL = location.protocol + "//" + location.host + "/graphql";
  var WS_URL = (location.protocol === "https:" ? "wss:" : "ws:") + "//" + location.host + "/graphql";
  var DEFAULT_QUERY_URL = "/static/graphiql-page/default-query.graphql";
  var RESTART = 4205; // our own close code: "reconnect with the new token" (graphql-ws retries it)
  var signin = window.kabinetSignIn;

  // --- which Authorization an operation carries ---

  function isPlaceholder(value) {
    return typeof value === "string" && /<[^>]*>/.test(value);
  }

  // Drop header values that still hold the "<…>" hint instead of a real token.
  function usableHeaders(headers) {
    var out = {};
    if (headers && typeof headers === "object") {
      Object.keys(headers).forEach(function (name) {
        var value = headers[name];
        if (value !== undefined && value !== null && !isPlaceholder(value)) out[name] = value;
      });
    }
    return out;
  }

  function typedAuthorization(headers) {
    var found = null;
    Object.keys(headers).forEach(function (name) {
      if (name.toLowerCase() === "authorization" && typeof headers[name] === "string" && headers[name].trim()) {
        found = headers[name].trim();
      }
    });
    return found;
  }

  var typedHeaders = {}; // of the latest operation, as GraphiQL parsed them from the Headers editor

  function currentAuthorization() {
    return typedAuthorization(typedHeaders) || signin.authorization();
  }

  // --- WebSocket: one graphql-ws client, restarted when the token changes ---

  var socket = { open: null, authorization: null, restartWanted: false };

  function restartSocket() {
    if (socket.open && socket.open.readyState === WebSocket.OPEN) {
      socket.open.close(RESTART, "New access token");
    } else {
      socket.restartWanted = true; // connecting: restart once it opens
    }
  }

  var client = graphqlWs.createClient({
    url: WS_URL,
    lazy: true, // opens with the first subscription, closes after the last
    retryAttempts: 5,
    connectionParams: function () {
      socket.authorization = currentAuthorization();
      return socket.authorization ? { authorization: socket.authorization } : {};
    },
    shouldRetry: function (event) {
      // 4403 Forbidden: the token was refused or its sign-in ended; the same one will not do better.
      return Boolean(event) && typeof event.code === "number" && event.code !== 4403;
    },
    on: {
      opened: function (ws) {
        socket.open = ws;
        if (socket.restartWanted) {
          socket.restartWanted = false;
          restartSocket();
        }
      },
      closed: function () {
        socket.open = null;
      },
    },
  });

  // A new token (sign-in, refresh, sign-out): an open socket reconnects with it.
  signin.onChange(function () {
    if (socket.open && currentAuthorization() !== socket.authorization) restartSocket();
  });

  function describeWsError(err) {
    if (err && typeof err.code === "number" && "reason" in err) {
      var text = "WebSocket closed: " + err.code + (err.reason ? " " + err.reason : "");
      if (err.code === 4403 || err.code === 4401) {
        text +=
          ". Subscriptions need a valid access token: sign in with the form above " +
          '(or put {"Authorization": "Bearer <accessToken>"} in the Headers editor).';
      }
      return new Error(text);
    }
    return err instanceof Error ? err : new Error(String(err));
  }

  // What GraphiQL's toolkit calls for subscription operations (it only uses .subscribe).
  var wsClient = {
    subscribe: function (payload, sink) {
      if (socket.open && currentAuthorization() !== socket.authorization) restartSocket();
      return client.subscribe(payload, {
        next: function (value) {
          sink.next(value);
        },
        complete: function () {
          sink.complete();
        },
        // The error goes to the result pane as an answer with `errors`, then the operation ends:
        // the toolkit's sink.error rejects a promise nobody awaits ("Uncaught (in promise)").
        error: function (err) {
          sink.next({ errors: [{ message: describeWsError(err).message }] });
          sink.complete();
        },
      });
    },
  };

  // --- fetcher: HTTP POST /graphql for queries and mutations, WebSocket for subscriptions ---

  var toolkitFetcher = GraphiQL.createFetcher({ url: HTTP_URL, wsClient: wsClient });

  function fetcher(graphQLParams, opts) {
    typedHeaders = usableHeaders(opts && opts.headers);
    return signin.fresh().then(function () {
      var headers = Object.assign({}, typedHeaders);
      var authorization = currentAuthorization();
      if (authorization && !typedAuthorization(headers)) headers.Authorization = authorization;
      return toolkitFetcher(graphQLParams, Object.assign({}, opts || {}, { headers: headers }));
    });
  }

  // --- the default tab's variables: the signed-in user's first organization ---

  // A GraphiQL.Footer child renders inside GraphiQL's editor context: it can reach the Variables editor.
  // After a sign-in, an empty Variables editor gets {"organizationId": "<first organization>"}, the
  // variable the default tab's subscription needs.
  function firstOrganizationId(session) {
    var memberships = (session && session.user && session.user.memberships) || [];
    return memberships.length ? memberships[0].organization.id : null;
  }

  function VariablesFromSignIn() {
    var context = GraphiQL.React.useEditorContext();
    var variableEditor = context && context.variableEditor;
    React.useEffect(
      function () {
        if (!variableEditor) return undefined;
        function fill(session) {
          var id = firstOrganizationId(session);
          var current = variableEditor.getValue().trim();
          if (id && (current === "" || current === "{}")) {
            variableEditor.setValue(JSON.stringify({ organizationId: id }, null, 2));
          }
        }
        fill(signin.session());
        signin.onChange(fill);
        return undefined;
      },
      [variableEditor]
    );
    return null;
  }

  // --- render ---

  var explorer = GraphiQLPluginExplorer.explorerPlugin();

  function render(defaultQuery) {
    function KabinetGraphiQL() {
      return React.createElement(
        GraphiQL,
        {
          fetcher: fetcher,
          plugins: [explorer],
          defaultQuery: defaultQuery,
          defaultHeaders: "",
          defaultEditorToolsVisibility: "variables",
          isHeadersEditorEnabled: true,
          shouldPersistHeaders: false,
          inputValueDeprecation: true,
        },
        React.createElement(GraphiQL.Footer, null, React.createElement(VariablesFromSignIn))
      );
    }
    ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(KabinetGraphiQL));
  }

  fetch(DEFAULT_QUERY_URL, { credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) throw new Error(String(response.status));
      return response.text();
    })
    .catch(function () {
      return "# Sign in with the form above, then ask away: Ctrl-Space completes, Ctrl-Enter runs.\n\nquery Me {\n  me {\n    fullName\n  }\n}\n";
    })
    .then(render);
})();
