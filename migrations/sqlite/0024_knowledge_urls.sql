-- Knowledge sources fetched from URLs, and the version retrieval caches by
-- (issue 17).
--
-- `status` is `indexing` while a `urls` source's pages are being fetched
-- in the background, and `ready` once every URL was tried (an upload
-- source is indexed inside its request and is always `ready`). A process
-- that dies mid-fetch leaves `indexing` behind; `bounty knowledge reindex`
-- fetches the source again and sets it `ready`.
--
-- `index_version` grows by one in every transaction that changes what a
-- source retrieves: chunks written or deleted, embeddings written. A
-- process may keep a source's embeddings in memory keyed by it, and reads
-- it (one indexed row per source) on every retrieval to know when its copy
-- is stale.
--
-- `knowledge_urls` holds one row per URL of a `urls` source: whether it
-- was fetched, and the last error when it was not. The document a fetched
-- URL became is the `knowledge_documents` row whose locator is the URL.

alter table knowledge_sources add column status text not null default 'ready'
    constraint knowledge_sources_status_check check (status in ('indexing', 'ready'));
alter table knowledge_sources add column index_version integer not null default 0;

create table knowledge_urls (
    account_id  text not null
                constraint knowledge_urls_account_id_fkey references accounts (id),
    source_id   text not null
                constraint knowledge_urls_source_id_fkey references knowledge_sources (id) on delete cascade,
    url         text not null,
    ordinal     integer not null,
    status      text not null
                constraint knowledge_urls_status_check check (status in ('pending', 'fetched', 'failed')),
    error       text,
    fetched_at  text,
    constraint knowledge_urls_pkey primary key (source_id, url)
);

create index knowledge_urls_account_id_source_id_idx on knowledge_urls (account_id, source_id, ordinal);
