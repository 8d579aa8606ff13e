"""tokclf's Label Studio client against a real Label Studio server (the session's `labelstudio`
fixture): projects, tasks, predictions, annotations, the export, and the errors a user meets (wrong
token, unknown project, unreachable server, rejected payload) — without the token in any message."""

from __future__ import annotations

import pytest

from tokclf.data.labelstudio_api import (
    TOKEN_ENV,
    LabelStudioAuthError,
    LabelStudioClient,
    LabelStudioError,
    annotated_tasks,
    token_from_env,
)

pytestmark = pytest.mark.timeout(900)
uses_server = pytest.mark.slow  # the tests that use the server (its start: 40-110 s on 2 cores)

CONFIG = """<View>
  <Labels name="label" toName="text"><Label value="PER"/><Label value="ORG"/></Labels>
  <Text name="text" value="$text"/>
</View>"""


def span(start: int, end: int, text: str, label: str, **extra) -> dict:
    return {"from_name": "label", "to_name": "text", "type": "labels",
            "value": {"start": start, "end": end, "text": text, "labels": [label]}, **extra}


@pytest.fixture()
def client(labelstudio):
    with LabelStudioClient(labelstudio.url, labelstudio.token) as c:
        yield c


@uses_server
def test_projects_tasks_predictions_annotations_export(client):
    assert client.whoami()["email"] == "annotator@example.com"
    project = client.create_project("client test", CONFIG)
    texts = [f"John works at Google number {i} ." for i in range(7)]
    tasks = [{"data": {"text": t}} for t in texts]
    # One task arrives with a pre-annotation already (the import route for predictions).
    tasks[0]["predictions"] = [{"model_version": "m0", "score": 0.5, "result": [span(0, 4, "John", "PER", score=0.5)]}]
    ids = client.import_tasks(project, tasks)
    assert len(ids) == 7 and len(set(ids)) == 7

    listed = client.tasks(project)
    assert [t["id"] for t in listed] == ids and [t["data"]["text"] for t in listed] == texts
    assert [t["id"] for t in client.tasks_without_predictions(project)] == ids[1:]

    pid = client.create_prediction(ids[1], result=[span(14, 20, "Google", "ORG", score=0.75)], score=0.75,
                                   model_version="m1")
    stored = client.predictions(ids[1])
    assert [p["id"] for p in stored] == [pid]
    assert stored[0]["model_version"] == "m1" and stored[0]["score"] == 0.75
    assert stored[0]["result"][0]["value"] == {"start": 14, "end": 20, "text": "Google", "labels": ["ORG"]}
    assert [t["id"] for t in client.tasks_without_predictions(project)] == ids[2:]

    assert client.export(project) == []  # nothing annotated yet
    client.create_annotation(ids[2], [span(0, 4, "John", "PER"), span(14, 20, "Google", "ORG")])
    client.create_annotation(ids[3], [span(0, 4, "John", "PER")], was_cancelled=True)
    export = client.export(project)
    assert sorted(t["id"] for t in export) == sorted([ids[2], ids[3]])
    assert [t["id"] for t in annotated_tasks(export)] == [ids[2]]  # the cancelled one is not annotated
    done = next(t for t in export if t["id"] == ids[2])
    assert done["data"]["text"] == texts[2]
    assert [r["value"]["labels"] for r in done["annotations"][0]["result"]] == [["PER"], ["ORG"]]
    assert len(client.export(project, all_tasks=True)) == 7


@uses_server
def test_pagination_reads_every_task(client, monkeypatch):
    import tokclf.data.labelstudio_api as api

    monkeypatch.setattr(api, "PAGE_SIZE", 3)
    project = client.create_project("pagination", CONFIG)
    ids = client.import_tasks(project, [{"data": {"text": f"text {i}"}} for i in range(8)])
    assert [t["id"] for t in client.tasks(project)] == ids


@uses_server
def test_wrong_token_is_refused_without_showing_it(labelstudio):
    bad = "0123456789abcdef0123456789abcdef01234567"
    with LabelStudioClient(labelstudio.url, bad) as c, pytest.raises(LabelStudioAuthError) as err:
        c.whoami()
    assert "401" in str(err.value) and bad not in str(err.value) and TOKEN_ENV in str(err.value)
    assert bad not in repr(c)
    jwt = "aaaa.bbbb.cccc"  # a malformed personal access token: refused at the refresh endpoint
    with LabelStudioClient(labelstudio.url, jwt) as c, pytest.raises(LabelStudioAuthError) as err:
        c.whoami()
    assert "personal access token" in str(err.value) and jwt not in str(err.value)


@uses_server
def test_personal_access_token(client, labelstudio):
    """A personal access token (a JWT refresh token) is exchanged for an access token and works."""
    pat = client.request("POST", "/api/token/")["token"]
    assert pat.count(".") == 2
    with LabelStudioClient(labelstudio.url, pat) as c:
        assert c.whoami()["email"] == "annotator@example.com"
        assert c.project(c.create_project("made with a PAT", CONFIG))["title"] == "made with a PAT"
        assert pat not in repr(c)


@uses_server
def test_unknown_project_and_rejected_payload(client):
    with pytest.raises(LabelStudioError, match="404"):
        client.export(999999)
    with pytest.raises(LabelStudioError, match="HTTP 400") as err:
        client.create_project("x", CONFIG)  # Label Studio wants a title of 3+ characters
    assert "title" in str(err.value)


def test_unreachable_server_and_bad_arguments():
    import labelstudio_server

    url = f"http://127.0.0.1:{labelstudio_server.free_port()}"  # nothing listens there
    with LabelStudioClient(url, "sometoken123") as c, pytest.raises(LabelStudioError, match="cannot reach") as err:
        c.whoami()
    assert url in str(err.value) and "sometoken123" not in str(err.value)
    with pytest.raises(LabelStudioError, match="not a Label Studio URL"):
        LabelStudioClient("localhost:8080", "t")
    with pytest.raises(LabelStudioAuthError, match="empty"):
        LabelStudioClient(url, "  ")


def test_token_from_env(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(LabelStudioAuthError, match=TOKEN_ENV):
        token_from_env()
    monkeypatch.setenv(TOKEN_ENV, "  abc123  \n")
    assert token_from_env() == "abc123"
