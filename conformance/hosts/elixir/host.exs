# A small gust host in Elixir: the worked example of conformance/README.md ("Checking your host").
#
#   elixir host.exs task  --gust CMD --file DAG_FILE --dag DAG --task TASK --ctx-json JSON
#                         [--store STORE] [--timeout SECONDS] [--framing stream|packet4] [--no-copy]
#   elixir host.exs parse --gust CMD --file DAG_FILE
#   elixir host.exs done  --gust CMD --file DAG_FILE --fn-name FN --status STATUS --run-id ID
#
# CMD is how to start the runtime, split on spaces: `uv run gust` (what Gust runs), a path to a
# `gust` executable, or the conformance runner's {gust}. Needs Debian's `elixir` and
# `erlang-jiffy` (JSON). Each command prints one line of JSON on stdout and exits 0 when the
# task (or callback) succeeded, 1 when it failed, 2 for a usage error.
#
# `task` does what Gust's adapter does, except where Gust differs from the suite (see
# README.md beside this file): it copies the DAG file to the temp dir, runs
# `CMD task run --file <copy> ...` as a port in the DAG's folder with UV_WORKING_DIR set, keeps
# the pid of the `start` frame, answers every call with exactly one reply from the store, stores
# logs, and on a framing fault or at the timeout runs `kill -9 <start pid>`. The task succeeded
# only when the runtime exited 0 after a success `result`.

defmodule GustHost do
  @max_frame 64 * 1024 * 1024

  # -- command line --------------------------------------------------------------------------

  def main(["task" | argv]), do: argv |> options(task_options()) |> run_task() |> finish()
  def main(["parse" | argv]), do: argv |> options(gust: :string, file: :string) |> parse() |> finish()

  def main(["done" | argv]) do
    spec = [gust: :string, file: :string, fn_name: :string, status: :string, run_id: :string]
    argv |> options(spec) |> run_done() |> finish()
  end

  def main(_), do: usage("the first argument is task, parse or done")

  defp task_options do
    [gust: :string, file: :string, dag: :string, task: :string, ctx_json: :string,
     store: :string, timeout: :float, framing: :string, copy: :boolean]
  end

  defp options(argv, spec) do
    case OptionParser.parse(argv, strict: spec) do
      {opts, [], []} ->
        missing = for {key, _} <- spec, key in [:gust, :file], not Keyword.has_key?(opts, key), do: key
        if missing != [], do: usage("missing --#{hd(missing)}")
        opts

      {_, extra, []} ->
        usage("unexpected arguments #{inspect(extra)}")

      {_, _, [{flag, _} | _]} ->
        usage("bad option #{flag}")
    end
  end

  defp usage(why) do
    IO.puts(:stderr, "host.exs: #{why}")
    IO.puts(:stderr, "usage: elixir host.exs task|parse|done --gust CMD --file DAG_FILE ... (see the file's head)")
    System.halt(2)
  end

  defp finish(report) do
    IO.puts(:jiffy.encode(report))
    System.halt(if report["outcome"] == "ok", do: 0, else: 1)
  end

  # -- task run -------------------------------------------------------------------------------

  defp run_task(opts) do
    for key <- [:dag, :task, :ctx_json], not Keyword.has_key?(opts, key) do
      usage("missing --#{key |> Atom.to_string() |> String.replace("_", "-")}")
    end

    file = Path.expand(opts[:file])
    folder = Path.dirname(file)
    store = load_store(opts[:store])
    copy = if Keyword.get(opts, :copy, true), do: temp_copy(file), else: file
    argv = ["task", "run", "--file", copy, "--dag", opts[:dag], "--task", opts[:task],
            "--ctx-json", opts[:ctx_json]]
    framing =
      case Keyword.get(opts, :framing, "stream") do
        "stream" -> :stream
        "packet4" -> :packet4
        other -> usage("--framing is stream or packet4, not #{other}")
      end

    port = open(opts[:gust], argv, folder, framing)
    {:os_pid, os_pid} = Port.info(port, :os_pid)
    if opts[:timeout], do: Process.send_after(self(), :timeout, round(opts[:timeout] * 1000))

    state = %{port: port, os_pid: os_pid, framing: framing, store: store, buffer: <<>>,
              pid: nil, logs: [], trace: nil, result: nil, failure: nil, warnings: []}
    state = serve(state)
    if copy != file, do: File.rm(copy)
    outcome(state)
  end

  defp open(gust, argv, folder, framing) do
    [exe | pre] = String.split(gust)
    path = if String.contains?(exe, "/"), do: Path.expand(exe), else: System.find_executable(exe)
    if path == nil, do: usage("cannot find #{exe}")
    mode = if framing == :packet4, do: [{:packet, 4}], else: [:stream]
    Port.open(
      {:spawn_executable, path},
      mode ++ [:binary, :exit_status, :use_stdio, {:args, pre ++ argv}, {:cd, folder},
               {:env, [{~c"UV_WORKING_DIR", String.to_charlist(folder)}]}]
    )
  end

  defp temp_copy(file) do
    # Gust names the copy after its runtime id; this VM's OS pid keeps parallel hosts apart.
    id = "#{System.pid()}#{System.unique_integer([:positive])}"
    copy = Path.join(System.tmp_dir!(), "gust_py_dag_#{id}_#{Path.basename(file)}")
    File.cp!(file, copy)
    copy
  end

  # Read frames until the runtime exits. A framing fault or the timeout kills the task at once.
  defp serve(%{port: port} = state) do
    receive do
      {^port, {:data, bytes}} ->
        state = take(state, bytes)
        if state.failure, do: serve_until_exit(state), else: serve(state)

      {^port, {:exit_status, status}} ->
        state =
          if state.failure == nil and state.buffer != <<>>,
            do: %{state | failure: "protocol error truncated: the output ended inside a frame"},
            else: state

        Map.put(state, :exit, status)

      :timeout when state.failure == nil ->
        kill(state)
        state |> Map.put(:failure, "timeout") |> serve_until_exit()

      :timeout ->
        serve(state)
    end
  end

  # After a kill: wait (bounded) for the port to report the exit, ignoring what it still says.
  defp serve_until_exit(%{port: port} = state) do
    receive do
      {^port, {:data, _}} -> serve_until_exit(state)
      {^port, {:exit_status, status}} -> Map.put(state, :exit, status)
    after
      5000 ->
        Port.close(port)
        Map.put(state, :exit, nil)
    end
  end

  defp take(%{framing: :packet4} = state, payload), do: handle_payload(state, payload)

  defp take(state, bytes) do
    case state.buffer <> bytes do
      <<size::unsigned-big-32, _::binary>> when size > @max_frame ->
        kill(state)
        failure = "protocol error oversize: a frame header announces #{size} bytes, over the limit of #{@max_frame}"
        %{state | buffer: <<>>, failure: failure}

      <<size::unsigned-big-32, payload::binary-size(size), rest::binary>> ->
        state |> Map.put(:buffer, <<>>) |> handle_payload(payload) |> take(rest)

      partial ->
        %{state | buffer: partial}
    end
  end

  defp handle_payload(state, payload) do
    case decode(payload) do
      {:ok, frame} -> handle(state, frame)
      {:error, code} -> warn(state, "frame dropped, protocol error #{code}")
    end
  end

  defp decode(payload) do
    if String.valid?(payload) do
      try do
        case :jiffy.decode(payload, [:return_maps]) do
          %{} = frame -> {:ok, frame}
          _ -> {:error, :not_object}
        end
      catch
        _, _ -> {:error, :bad_json}
      end
    else
      {:error, :bad_utf8}
    end
  end

  defp handle(state, %{"type" => "start", "pid" => pid}) when is_integer(pid), do: %{state | pid: pid}

  defp handle(state, %{"type" => "log"} = frame) do
    entry = %{"level" => text(Map.get(frame, "level", "info")), "msg" => text(frame["msg"])}
    %{state | logs: [entry | state.logs]}
  end

  defp handle(state, %{"type" => "call"} = call) do
    reply = answer(call, state.store)
    Port.command(state.port, frame_bytes(state.framing, :jiffy.encode(reply)))
    state
  end

  defp handle(state, %{"type" => "error", "trace" => trace}), do: %{state | trace: text(trace)}
  defp handle(state, %{"type" => "result", "ok" => ok} = frame) when is_boolean(ok), do: %{state | result: frame}
  defp handle(state, frame), do: warn(state, "frame ignored: #{:jiffy.encode(frame)}")

  defp frame_bytes(:packet4, payload), do: payload
  defp frame_bytes(:stream, payload), do: <<byte_size(payload)::unsigned-big-32, payload::binary>>

  defp json(nil), do: :null
  defp json(value), do: value

  defp text(value) when is_binary(value), do: value
  defp text(value), do: :jiffy.encode(value)

  defp warn(state, message), do: %{state | warnings: [message | state.warnings]}

  # Gust's way to end a task: kill -9 of the pid the start frame gave (the port's own pid is
  # uv's under `uv run`); before start only the spawned process can be killed.
  defp kill(state) do
    target = state.pid || state.os_pid
    System.cmd("kill", ["-9", Integer.to_string(target)], stderr_to_stdout: true)
  end

  defp outcome(state) do
    base = %{"pid" => json(state.pid), "os_pid" => state.os_pid, "exit" => json(state.exit),
             "logs" => Enum.reverse(state.logs), "warnings" => Enum.reverse(state.warnings)}
    result = state.result

    cond do
      state.failure != nil ->
        Map.merge(base, %{"outcome" => "failed", "reason" => state.failure})

      state.exit != 0 ->
        said = if result, do: "after its result", else: "without a result"
        Map.merge(base, %{"outcome" => "failed", "reason" => "exited #{inspect(state.exit)} #{said}"})

      result == nil ->
        reason = state.trace || "exited 0 without a result"
        Map.merge(base, %{"outcome" => "failed", "reason" => reason})

      result["ok"] == true ->
        value = get_in(result, ["data", "value"])
        Map.merge(base, %{"outcome" => "ok", "value" => if(value == nil, do: :null, else: value)})

      true ->
        error = result["error"]
        message = if is_map(error), do: error["message"], else: text(error)
        reason = state.trace || message
        Map.merge(base, %{"outcome" => "failed", "reason" => reason, "error" => error})
    end
  end

  # -- calls ----------------------------------------------------------------------------------

  defp answer(%{"op" => "get_secret_by_name", "name" => name}, store) when is_binary(name) do
    case Enum.find_index(store.secrets, fn {key, _} -> key == name end) do
      nil ->
        error("secret_not_found")

      index ->
        {_, secret} = Enum.at(store.secrets, index)
        secret = if is_binary(secret), do: %{"value" => secret}, else: secret
        ok(%{"id" => Map.get(secret, "id", index + 1), "name" => name,
             "value_type" => Map.get(secret, "value_type", "string"), "value" => secret["value"]})
    end
  end

  defp answer(%{"op" => "get_task_by_name_run", "name" => name, "run_id" => run_id}, store)
       when is_binary(name) do
    tasks = Map.get(store.runs, to_string(run_id), [])

    case Enum.find_index(tasks, fn {key, _} -> key == name end) do
      nil -> error("task_not_found")
      index -> ok(%{"id" => index + 1, "result" => elem(Enum.at(tasks, index), 1)})
    end
  end

  defp answer(%{"op" => op}, _) when op in ["get_secret_by_name", "get_task_by_name_run"],
    do: error("bad_call")

  defp answer(_, _), do: error("unknown_op")

  defp ok(data), do: %{"type" => "reply", "ok" => true, "data" => data}
  defp error(code), do: %{"type" => "reply", "ok" => false, "error" => code}

  # The store file: {"secrets": {NAME: {"value", "value_type", "id"?} | "a string"},
  #                  "runs": {"<run id>": {TASK: saved result}}}, both keys optional.
  defp load_store(nil), do: %{secrets: [], runs: %{}}

  defp load_store(path) do
    {fields} = path |> File.read!() |> :jiffy.decode()
    secrets = fields |> List.keyfind("secrets", 0, {"secrets", {[]}}) |> elem(1) |> pairs()
    runs = fields |> List.keyfind("runs", 0, {"runs", {[]}}) |> elem(1) |> pairs()
    %{secrets: Enum.map(secrets, fn {k, v} -> {k, to_map(v)} end),
      runs: Map.new(runs, fn {run, tasks} -> {run, Enum.map(pairs(tasks), fn {k, v} -> {k, to_map(v)} end)} end)}
  end

  defp pairs({list}), do: list

  # jiffy's {[{key, value}]} objects (which keep file order) into maps, all the way down.
  defp to_map({list}), do: Map.new(list, fn {k, v} -> {k, to_map(v)} end)
  defp to_map(list) when is_list(list), do: Enum.map(list, &to_map/1)
  defp to_map(value), do: value

  # -- parse and run done -----------------------------------------------------------------------

  defp parse(opts) do
    file = Path.expand(opts[:file])
    {out, status} = command(opts[:gust], ["parse", "--file", file], Path.dirname(file))

    cond do
      status != 0 ->
        %{"outcome" => "failed", "reason" => "Parse file command failed, exit: #{status}"}

      true ->
        try do
          :jiffy.decode(out, [:return_maps])
        catch
          _, _ -> :not_json
        end
        |> case do
          [] -> %{"outcome" => "failed", "reason" => "not a Gust file"}
          [first | _] -> read_entry(first)
          _ -> %{"outcome" => "failed", "reason" => "parse output is not a JSON list"}
        end
    end
  end

  # What Gust reads of the first entry; it lays the stages out itself from the downstream links.
  defp read_entry(entry) do
    error = entry["error"]

    if error != %{} do
      %{"outcome" => "failed", "reason" => "parsing error", "line" => error["line"],
        "description" => error["description"]}
    else
      tasks = entry["tasks"]
      %{"outcome" => "ok", "mod" => entry["mod"], "file_path" => entry["file_path"],
        "stages" => stages(tasks), "save" => Map.new(tasks, fn {name, t} -> {name, t["save"]} end),
        "schedule" => entry["options"]["schedule"],
        "on_finished_callback" => entry["options"]["on_finished_callback"]}
    end
  end

  defp stages(tasks) do
    names = tasks |> Map.keys() |> Enum.sort()
    upstream = Map.new(names, fn n -> {n, for(m <- names, n in tasks[m]["downstream"], do: m)} end)
    layer(names, upstream, MapSet.new(), [])
  end

  defp layer([], _, _, acc), do: Enum.reverse(acc)

  defp layer(left, upstream, done, acc) do
    ready = Enum.filter(left, fn n -> Enum.all?(upstream[n], &MapSet.member?(done, &1)) end)
    if ready == [], do: raise("the downstream links form a cycle: #{inspect(left)}")
    layer(left -- ready, upstream, MapSet.union(done, MapSet.new(ready)), [ready | acc])
  end

  defp run_done(opts) do
    for key <- [:fn_name, :status, :run_id], not Keyword.has_key?(opts, key) do
      usage("missing --#{key |> Atom.to_string() |> String.replace("_", "-")}")
    end

    file = Path.expand(opts[:file])
    copy = temp_copy(file)
    argv = ["run", "done", "--file", copy, "--dag", Path.basename(file, ".py"),
            "--fn-name", opts[:fn_name], "--status", opts[:status], "--run-id", opts[:run_id]]
    {_, status} = command(opts[:gust], argv, Path.dirname(file))
    File.rm(copy)
    %{"outcome" => if(status == 0, do: "ok", else: "failed"), "exit" => status}
  end

  defp command(gust, argv, folder) do
    [exe | pre] = String.split(gust)
    path = if String.contains?(exe, "/"), do: Path.expand(exe), else: System.find_executable(exe)
    if path == nil, do: usage("cannot find #{exe}")
    System.cmd(path, pre ++ argv, cd: folder, env: [{"UV_WORKING_DIR", folder}])
  end
end

GustHost.main(System.argv())
