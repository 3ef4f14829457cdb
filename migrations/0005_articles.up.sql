-- articles: the seed searches an `Article` model it never defines. This is the smallest model its
-- search examples need: a title (weight A) and a body (weight B).
create table articles (
    id         uuid         not null default gen_random_uuid(),
    title      varchar(200) not null,
    content    text         not null default '',
    created_at timestamptz  not null default now(),

    constraint articles_pkey primary key (id),
    -- A title must have something other than white space in it.
    constraint articles_title_not_blank check (title ~ '[^[:space:]]')
);
