"""One process of tests/test_tracking_concurrency.py: THREADS threads (or asyncio tasks) x CALLS calls into
one ledger.

    python _concurrency_worker.py LEDGER PROC THREADS CALLS log|http|async-http [BASE_URL]

``log`` calls ``llmcost_nb.log`` directly with input_tokens = a number unique to the call (1..N overall), so
the ledger proves no call was lost or written twice; ``http`` makes real openai chat calls against the fake
provider from threads, ``async-http`` from asyncio tasks of one event loop. Prints one JSON line: calls made,
exceptions, and the llmcost_nb warnings seen (there must be none: no "database is locked").
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import warnings

import llmcost_nb


def main() -> None:
    path, proc, threads, calls, mode = sys.argv[1], *map(int, sys.argv[2:5]), sys.argv[5]
    base = sys.argv[6] if len(sys.argv) > 6 else None
    ledger = llmcost_nb.Ledger(path)
    seen: list[str] = []
    errors: list[str] = []
    done = [0]
    lock = threading.Lock()

    def note(kind: list[str], text: str) -> None:
        with lock:
            kind.append(text)

    def showwarning(message, category, *args, **kwargs):
        note(seen, f"{category.__name__}: {message}")

    warnings.showwarning = showwarning
    warnings.simplefilter("always")

    def by_log(thread: int) -> None:
        first = (proc * threads + thread) * calls + 1
        for k in range(first, first + calls):
            try:
                llmcost_nb.log(
                    model="gpt-4.1",
                    input_tokens=k,
                    output_tokens=10,
                    ledger=ledger,
                    tags={"proc": str(proc), "thread": str(thread)},
                )
            except Exception as exc:
                note(errors, repr(exc))
        with lock:
            done[0] += calls

    if mode == "log":
        workers = [threading.Thread(target=by_log, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    elif mode == "http":
        import openai

        client = openai.OpenAI(base_url=base, api_key="sk-concurrency", max_retries=0)

        def by_http(thread: int) -> None:
            with llmcost_nb.track(ledger=ledger, tags={"proc": str(proc), "thread": str(thread)}):
                for _ in range(calls):
                    try:
                        client.chat.completions.create(
                            model="gpt-4.1", messages=[{"role": "user", "content": "hello there world"}]
                        )
                    except Exception as exc:
                        note(errors, repr(exc))
            with lock:
                done[0] += calls

        workers = [threading.Thread(target=by_http, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    else:
        import openai

        async def run_all() -> None:
            client = openai.AsyncOpenAI(base_url=base, api_key="sk-concurrency", max_retries=0)

            async def task(n: int) -> None:
                async with llmcost_nb.track(ledger=ledger, tags={"proc": str(proc), "task": str(n)}):
                    for _ in range(calls):
                        try:
                            await client.chat.completions.create(
                                model="gpt-4.1", messages=[{"role": "user", "content": "hello there world"}]
                            )
                        except Exception as exc:
                            note(errors, repr(exc))
                done[0] += calls

            await asyncio.gather(*(task(n) for n in range(threads)))

        asyncio.run(run_all())
    print(json.dumps({"calls": done[0], "errors": errors[:5], "n_errors": len(errors), "warnings": seen[:5]}))


if __name__ == "__main__":
    main()
