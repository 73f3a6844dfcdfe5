-- Knowledge (issue 17): an account's sources of documents, the documents,
-- and the chunks an agent's retrieval returns with their source links.
--
-- Every row carries its account, and every read and write of the store
-- names it. A document belongs to one source and a chunk to one document;
-- deleting a source deletes its documents and chunks (the store deletes
-- them in one transaction, and `on delete cascade` says the same).
--
-- A chunk's id is the hash of what it is (source, document, heading path,
-- text), so re-indexing unchanged text keeps its row, and the embedding
-- another process may have written into it. `embedding` holds
-- little-endian f32s (4 bytes each) and `embedding_model` the model that
-- made them; both stay null until an embedder fills them. (No pgvector:
-- the extension is not available everywhere Bounty runs; vectors are
-- scored in process.)
--
-- `urls` is the URL list of a `urls` source, as a JSON array; an upload
-- source has none. `content` keeps an uploaded document's text, so
-- `bounty knowledge reindex` can cut it again.

create table knowledge_sources (
    id              text collate "C" primary key,
    account_id      text collate "C" not null
                    constraint knowledge_sources_account_id_fkey references accounts (id),
    livemode        boolean not null,
    name            text not null,
    kind            text not null
                    constraint knowledge_sources_kind_check check (kind in ('upload', 'urls')),
    urls            text,
    document_count  bigint not null default 0,
    chunk_count     bigint not null default 0,
    created_at      timestamptz not null,
    updated_at      timestamptz not null,
    indexed_at      timestamptz
);

create index knowledge_sources_account_id_livemode_id_idx on knowledge_sources (account_id, livemode, id);

create table knowledge_documents (
    id              text collate "C" primary key,
    account_id      text collate "C" not null
                    constraint knowledge_documents_account_id_fkey references accounts (id),
    source_id       text collate "C" not null
                    constraint knowledge_documents_source_id_fkey references knowledge_sources (id) on delete cascade,
    locator         text not null,
    title           text not null,
    format          text not null
                    constraint knowledge_documents_format_check check (format in ('markdown', 'html', 'text')),
    content         text not null,
    content_sha256  text not null,
    created_at      timestamptz not null,
    indexed_at      timestamptz not null,
    constraint knowledge_documents_source_id_locator_key unique (source_id, locator)
);

create index knowledge_documents_account_id_source_id_idx on knowledge_documents (account_id, source_id);

-- Keyword search: a generated `tsvector` of the heading path and the text
-- (English configuration: stemmed, stop words dropped) under a GIN index.
create table knowledge_chunks (
    id               text collate "C" primary key,
    account_id       text collate "C" not null
                     constraint knowledge_chunks_account_id_fkey references accounts (id),
    source_id        text collate "C" not null
                     constraint knowledge_chunks_source_id_fkey references knowledge_sources (id) on delete cascade,
    document_id      text collate "C" not null
                     constraint knowledge_chunks_document_id_fkey references knowledge_documents (id) on delete cascade,
    ordinal          bigint not null,
    heading_path     text not null,
    text             text not null,
    link             text not null,
    embedding        bytea,
    embedding_model  text,
    search           tsvector generated always as
                     (to_tsvector('english'::regconfig, heading_path || ' ' || text)) stored,
    constraint knowledge_chunks_embedding_check check ((embedding is null) = (embedding_model is null))
);

create index knowledge_chunks_account_id_source_id_idx on knowledge_chunks (account_id, source_id);
create index knowledge_chunks_document_id_ordinal_idx on knowledge_chunks (document_id, ordinal);
create index knowledge_chunks_search_idx on knowledge_chunks using gin (search);
